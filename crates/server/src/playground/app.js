// The upres playground: picks an image, calls the real v1 endpoint, and shows before and after.
// Served by the binary itself; the page loads nothing from anywhere else (see its CSP).
"use strict";

const SLUG = "bria-increase-resolution";
const $ = (id) => document.getElementById(id);

let chosenFile = null; // the File being upscaled, when the input is a file
let beforeUrl = null; // object URLs this page owns, revoked when replaced
let afterUrl = null;
let running = null; // the AbortController of the request in flight

// What the server offers: models, their scales, whether a key is needed.
async function loadModels() {
  const response = await fetch("/models");
  if (!response.ok) throw new Error(`GET /models: ${response.status}`);
  const offer = await response.json();
  const select = $("model");
  for (const model of offer.models) {
    const option = new Option(model.look ? `${model.id} (${model.look})` : model.id, model.id);
    option.dataset.scales = model.scales.join(",");
    option.dataset.about = [model.description, model.license].filter(Boolean).join(" · ");
    option.selected = model.id === offer.default_model;
    select.append(option);
  }
  if (!offer.models.length) select.append(new Option(offer.default_model, offer.default_model));
  $("key-row").hidden = !offer.api_key_required;
  $("api-key").value = sessionStorage.getItem("upres-api-key") || "";
  if (offer.engine) {
    const notice = $("engine-notice");
    notice.textContent = `This server runs the load-testing engine "${offer.engine}": outputs are resizes, not a model's.`;
    notice.hidden = false;
  }
  modelChanged();
}

// Only the scales the chosen model can do are selectable.
function modelChanged() {
  const option = $("model").selectedOptions[0];
  const scales = (option?.dataset.scales || "2,4").split(",");
  for (const scale of ["2", "4"]) {
    const radio = $(`scale-${scale}`);
    radio.disabled = !scales.includes(scale);
    if (radio.disabled && radio.checked) $(`scale-${scales[0]}`).checked = true;
  }
  $("model-about").textContent = option?.dataset.about || "";
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function replaceUrl(old, blob) {
  if (old) URL.revokeObjectURL(old);
  return blob ? URL.createObjectURL(blob) : null;
}

function clearResult() {
  afterUrl = replaceUrl(afterUrl, null);
  $("after").removeAttribute("src");
  $("download").hidden = true;
  for (const id of ["output-size", "queue-time", "inference-time", "total-time", "round-trip", "request-id"]) {
    $(id).textContent = "–";
  }
}

function chooseFile(file) {
  if (!file) return;
  chosenFile = file;
  $("url").value = "";
  $("file-name").textContent = `${file.name} (${(file.size / 1024).toFixed(0)} KiB)`;
  beforeUrl = replaceUrl(beforeUrl, file);
  const before = $("before");
  before.src = beforeUrl;
  before.decode().then(
    () => {
      $("input-size").textContent = `${before.naturalWidth} × ${before.naturalHeight}`;
      $("compare").style.setProperty("--aspect", before.naturalWidth / before.naturalHeight);
      setStatus("");
    },
    () => setStatus("The browser cannot show this file; the server may still read it."),
  );
  clearResult();
  $("compare").classList.remove("empty");
  $("compare").classList.add("pending");
}

function readDataUri(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function seconds(value) {
  return value === null ? "–" : `${Number(value).toFixed(3)} s`;
}

async function upscale(event) {
  event.preventDefault();
  const url = $("url").value.trim();
  if (!chosenFile && !url) {
    setStatus("Choose or drop an image, or give a URL, first.", true);
    return;
  }
  const scale = Number(document.querySelector("input[name=scale]:checked").value);
  const headers = { "content-type": "application/json" };
  const key = $("api-key").value;
  if (key) {
    headers["x-api-key"] = key;
    sessionStorage.setItem("upres-api-key", key);
  }
  clearResult();
  running = new AbortController();
  $("run").disabled = true;
  $("cancel").disabled = false;
  const started = performance.now();
  const ticker = setInterval(() => setStatus(`Upscaling… ${((performance.now() - started) / 1000).toFixed(1)} s`), 100);
  try {
    const body = {
      image: url || (await readDataUri(chosenFile)),
      desired_increase: scale,
      model: $("model").value,
      preserve_alpha: $("preserve-alpha").checked,
      visual_input_content_moderation: $("moderate-input").checked,
      visual_output_content_moderation: $("moderate-output").checked,
    };
    const response = await fetch(`/v1/${SLUG}`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: running.signal,
    });
    const roundTrip = (performance.now() - started) / 1000;
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).error || message;
      } catch {
        // not JSON: keep the status text
      }
      setStatus(`${response.status}: ${message}`, true);
      return;
    }
    const blob = await response.blob();
    afterUrl = replaceUrl(afterUrl, blob);
    const after = $("after");
    after.src = afterUrl;
    await after.decode();
    const compare = $("compare");
    compare.classList.remove("empty", "pending");
    compare.classList.toggle("after-only", Boolean(url));
    compare.style.setProperty("--natural-width", `${after.naturalWidth}px`);
    compare.style.setProperty("--aspect", after.naturalWidth / after.naturalHeight);
    if (url) {
      // The page never loads the URL itself (the CSP forbids outside loads): no "before" view.
      $("before").removeAttribute("src");
      $("input-size").textContent = `${after.naturalWidth / scale} × ${after.naturalHeight / scale} (fetched by the server)`;
    }
    $("output-size").textContent = `${after.naturalWidth} × ${after.naturalHeight} (x${scale})`;
    $("queue-time").textContent = seconds(response.headers.get("x-queue-time"));
    $("inference-time").textContent = seconds(response.headers.get("x-inference-time"));
    $("total-time").textContent = seconds(response.headers.get("x-total-time"));
    $("round-trip").textContent = seconds(roundTrip);
    $("request-id").textContent = response.headers.get("x-request-id") || "–";
    const download = $("download");
    const stem = chosenFile && !url ? chosenFile.name.replace(/\.[^.]*$/, "") : "upscaled";
    download.href = afterUrl;
    download.download = `${stem}-x${scale}.png`;
    download.hidden = false;
    setStatus(`Done in ${roundTrip.toFixed(2)} s.`);
  } catch (error) {
    setStatus(error.name === "AbortError" ? "Cancelled." : `Failed: ${error.message}`, true);
  } finally {
    clearInterval(ticker);
    running = null;
    $("run").disabled = false;
    $("cancel").disabled = true;
  }
}

function setSplit(percent) {
  const clamped = Math.min(100, Math.max(0, percent));
  $("compare").style.setProperty("--split", `${clamped}%`);
  $("split").value = clamped;
}

function wire() {
  $("form").addEventListener("submit", upscale);
  $("cancel").addEventListener("click", () => running?.abort());
  $("model").addEventListener("change", modelChanged);
  $("file").addEventListener("change", () => chooseFile($("file").files[0]));
  $("url").addEventListener("input", () => {
    if (!$("url").value.trim()) return;
    chosenFile = null;
    $("file").value = "";
    $("file-name").textContent = "";
    beforeUrl = replaceUrl(beforeUrl, null);
    $("before").removeAttribute("src");
    $("input-size").textContent = "–";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  $("split").addEventListener("input", () => setSplit(Number($("split").value)));
  const compare = $("compare");
  compare.addEventListener("pointermove", (e) => {
    if (e.buttons !== 1) return;
    const box = compare.getBoundingClientRect();
    setSplit(((e.clientX - box.left + compare.scrollLeft) / compare.scrollWidth) * 100);
  });
  $("actual-pixels").addEventListener("change", () =>
    compare.classList.toggle("actual", $("actual-pixels").checked),
  );
  loadModels().catch((error) => setStatus(`Could not load the model list: ${error.message}`, true));
}

wire();
