// The UpscalerJS runner of the peer benchmark: one process, one model, one measurement.
//
//   node runner.mjs --model esrgan-slim --input in.png --warmup warm.png [--output out.png]
//                   [--threads 2]
//
// UpscalerJS 1.0.0 (`upscaler`, its browser/ESM build, which runs in Node when given tensors)
// with the model's own definition from `@upscalerjs/esrgan-*` (x4: its input/output range and,
// for esrgan-thick, its custom layers), on TF.js's WASM backend (no native download; tfjs-node
// would fetch a binary). The whole image in one `execute` (no patchSize), output as a tensor in
// [0, 255], rounded to 8 bits. PNG decode/encode: pngjs (pure JS, default settings). The model
// files are read from the installed package through a small file IOHandler (the browser build
// would otherwise fetch them from a CDN). Prints one JSON line:
// {"seconds", "peak_rss_kib", ...}; peak_rss_kib is process.resourceUsage().maxRSS (getrusage).
//
// Threads: the backend's threaded SIMD build needs Web Workers; with --threads N > 1 it is
// asked for (tf.wasm.setThreadsCount), and "wasm_threads" in the output says what ran.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire, register } from 'node:module';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    input: { type: 'string' },
    warmup: { type: 'string' },
    output: { type: 'string' },
    threads: { type: 'string', default: '1' },
  },
});

const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const threads = Number(args.threads);
if (threads > 1) {
  wasm.setThreadsCount(threads);
} else {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
}
const { PNG } = require('pngjs');
register('./resolve-hook.mjs', import.meta.url);
const { default: Upscaler } = await import('upscaler');

/** A tf.io handler that reads a layers model (model.json + shards) from a folder. */
function folderHandler(dir) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const specs = [];
      const shards = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(shards);
      return {
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
      };
    },
  };
}

const t0 = performance.now();
await tf.setBackend('wasm');
await tf.ready();
const pkg = `@upscalerjs/${args.model}`;
const definition = require(`${pkg}/4x`);
const entry = require.resolve(`${pkg}/4x`);
const pkgDir = entry.slice(0, entry.indexOf(pkg) + pkg.length);
const upscaler = new Upscaler({
  model: { ...definition, path: folderHandler(path.join(pkgDir, definition._internals.path, '..')) },
});
await upscaler.getModel();
const loadSeconds = (performance.now() - t0) / 1000;

async function once(png) {
  const a = performance.now();
  const img = PNG.sync.read(png);
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = img.data[j];
    rgb[i + 1] = img.data[j + 1];
    rgb[i + 2] = img.data[j + 2];
  }
  const input = tf.tensor3d(rgb, [img.height, img.width, 3], 'int32');
  const b = performance.now();
  const out = await upscaler.execute(input, { output: 'tensor' });
  const data = await out.data();
  const [h, w] = out.shape;
  input.dispose();
  out.dispose();
  const c = performance.now();
  const png2 = new PNG({ width: w, height: h });
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    png2.data[j] = Math.round(data[i]);
    png2.data[j + 1] = Math.round(data[i + 1]);
    png2.data[j + 2] = Math.round(data[i + 2]);
    png2.data[j + 3] = 255;
  }
  const encoded = PNG.sync.write(png2);
  const d = performance.now();
  return { encoded, w, h, phases: [(b - a) / 1000, (c - b) / 1000, (d - c) / 1000, (d - a) / 1000] };
}

const warm = await once(fs.readFileSync(args.warmup));
const r = await once(fs.readFileSync(args.input));
if (args.output) fs.writeFileSync(args.output, r.encoded);
const tfjsPkg = require('@tensorflow/tfjs/package.json');
console.log(JSON.stringify({
  runner: 'tfjs',
  model: args.model,
  seconds: r.phases[3],
  peak_rss_kib: process.resourceUsage().maxRSS,
  decode_seconds: r.phases[0],
  infer_seconds: r.phases[1],
  encode_seconds: r.phases[2],
  load_seconds: loadSeconds,
  warmup_seconds: warm.phases[3],
  output: [r.w, r.h],
  version: tfjsPkg.version,
  backend: tf.getBackend(),
  wasm_threads: wasm.getThreadsCount ? wasm.getThreadsCount() : null,
  wasm_multithread: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ?? null,
}));
process.exit(0);
