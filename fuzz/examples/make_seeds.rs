//! Writes the seed corpora under fuzz/corpus/<target>/ (deterministic: running it again gives
//! the same bytes). Run from the repository root:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! Images are tiny (8x8 to 32x16) and cover what the engine accepts: PNG 8/16-bit grey, grey +
//! alpha, RGB, RGBA, palette (with tRNS), Adam7-interlaced, with iCCP and eXIf; JPEG baseline,
//! progressive, grey, CMYK, YCCK, restart intervals, EXIF orientation, ICC; WebP lossy, lossless,
//! with alpha, extended (VP8X) with EXIF and ICC. Most PNGs use "stored" (uncompressed) deflate
//! blocks, so that byte mutations of the pixels still decode; one is compressed by the image
//! crate. Files found by the fuzzers (crashes turned into regression seeds) are not written here:
//! they are committed as they were found, named `regress-*`.

use std::fs;
use std::path::{Path, PathBuf};

use image::ImageEncoder;

// Beside this file, not as examples/formats.rs: Cargo would take that for an example of its own.
#[path = "make_seeds/formats.rs"]
mod formats;

use formats::{
    base64, exif_orientation, fake_icc, pattern, png, rgba8, webp_extended, zlib_stored,
};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let decode = root.join("decode");
    let body = root.join("request_body");
    let field = root.join("image_field");
    for dir in [&decode, &body, &field] {
        fs::create_dir_all(dir).unwrap();
    }
    let mut written = 0;
    let mut put = |dir: &PathBuf, name: &str, bytes: &[u8]| {
        fs::write(dir.join(name), bytes).unwrap();
        written += 1;
    };

    // ---- decode: PNG ----
    let exif = exif_orientation(6);
    for (name, w, h, color, depth) in [
        ("png-grey8.png", 16, 16, 0u8, 8u8),
        ("png-grey16.png", 16, 8, 0, 16),
        ("png-grey1.png", 32, 16, 0, 1),
        ("png-greyalpha8.png", 16, 16, 4, 8),
        ("png-greyalpha16.png", 8, 8, 4, 16),
        ("png-rgb8.png", 16, 16, 2, 8),
        ("png-rgb16.png", 16, 8, 2, 16),
        ("png-rgba8.png", 16, 16, 6, 8),
        ("png-rgba16.png", 16, 8, 6, 16),
        ("png-palette8.png", 16, 16, 3, 8),
        ("png-palette2.png", 32, 16, 3, 2),
    ] {
        put(&decode, name, &png(w, h, color, depth, false, &[]));
    }
    put(
        &decode,
        "png-interlaced-rgba8.png",
        &png(16, 16, 6, 8, true, &[]),
    );
    put(
        &decode,
        "png-interlaced-grey16.png",
        &png(16, 8, 0, 16, true, &[]),
    );
    put(
        &decode,
        "png-interlaced-palette4.png",
        &png(16, 16, 3, 4, true, &[]),
    );
    let icc = fake_icc();
    put(
        &decode,
        "png-iccp-rgb8.png",
        &png(
            8,
            8,
            2,
            8,
            false,
            &[(
                *b"iCCP",
                [b"icc\0\0".as_slice(), &zlib_stored(&icc)].concat(),
            )],
        ),
    );
    put(
        &decode,
        "png-exif-orient6-rgb8.png",
        &png(16, 8, 2, 8, false, &[(*b"eXIf", exif.clone())]),
    );
    let mut compressed = Vec::new();
    image::codecs::png::PngEncoder::new(&mut compressed)
        .write_image(&rgba8(32, 16), 32, 16, image::ExtendedColorType::Rgba8)
        .unwrap();
    put(&decode, "png-compressed-rgba8.png", &compressed);

    // ---- decode: JPEG ----
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let jpeg = |color: ColorType, w: u16, h: u16, setup: &dyn Fn(&mut Encoder<&mut Vec<u8>>)| {
        let channels = match color {
            ColorType::Luma => 1,
            ColorType::Rgb => 3,
            _ => 4,
        };
        let pixels: Vec<u8> = pattern(w as u32 * h as u32 * channels, 7);
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 75);
        setup(&mut encoder);
        encoder.encode(&pixels, w, h, color).unwrap();
        out
    };
    put(
        &decode,
        "jpeg-baseline-420.jpg",
        &jpeg(ColorType::Rgb, 16, 16, &|_| {}),
    );
    put(
        &decode,
        "jpeg-baseline-444.jpg",
        &jpeg(ColorType::Rgb, 24, 8, &|e| {
            e.set_sampling_factor(SamplingFactor::R_4_4_4)
        }),
    );
    put(
        &decode,
        "jpeg-baseline-422-restart.jpg",
        &jpeg(ColorType::Rgb, 32, 16, &|e| {
            e.set_sampling_factor(SamplingFactor::R_4_2_2);
            e.set_restart_interval(1);
        }),
    );
    put(
        &decode,
        "jpeg-progressive.jpg",
        &jpeg(ColorType::Rgb, 16, 16, &|e| e.set_progressive(true)),
    );
    put(
        &decode,
        "jpeg-grey.jpg",
        &jpeg(ColorType::Luma, 16, 16, &|_| {}),
    );
    put(
        &decode,
        "jpeg-grey-progressive.jpg",
        &jpeg(ColorType::Luma, 16, 8, &|e| e.set_progressive(true)),
    );
    put(
        &decode,
        "jpeg-cmyk.jpg",
        &jpeg(ColorType::Cmyk, 16, 16, &|_| {}),
    );
    put(
        &decode,
        "jpeg-ycck.jpg",
        &jpeg(ColorType::CmykAsYcck, 16, 8, &|_| {}),
    );
    for orientation in [3u16, 6, 8] {
        let exif = exif_orientation(orientation);
        put(
            &decode,
            &format!("jpeg-exif-orient{orientation}.jpg"),
            &jpeg(ColorType::Rgb, 16, 8, &|e| {
                e.add_app_segment(1, &[b"Exif\0\0".as_slice(), &exif].concat())
                    .unwrap()
            }),
        );
    }
    put(
        &decode,
        "jpeg-icc.jpg",
        &jpeg(ColorType::Rgb, 8, 8, &|e| e.add_icc_profile(&icc).unwrap()),
    );

    // ---- decode: WebP ----
    let rgba = rgba8(16, 16);
    let rgb: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let lossy = webp::Encoder::from_rgb(&rgb, 16, 16).encode(75.0).to_vec();
    put(&decode, "webp-lossy.webp", &lossy);
    put(
        &decode,
        "webp-lossy-alpha.webp",
        &webp::Encoder::from_rgba(&rgba, 16, 16)
            .encode(75.0)
            .to_vec(),
    );
    let lossless = webp::Encoder::from_rgb(&rgb, 16, 16)
        .encode_lossless()
        .to_vec();
    put(&decode, "webp-lossless.webp", &lossless);
    let lossless_alpha = webp::Encoder::from_rgba(&rgba, 16, 16)
        .encode_lossless()
        .to_vec();
    put(&decode, "webp-lossless-alpha.webp", &lossless_alpha);
    let mut image_rs = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut image_rs)
        .write_image(&rgba8(24, 8), 24, 8, image::ExtendedColorType::Rgba8)
        .unwrap();
    put(&decode, "webp-lossless-alpha-imagers.webp", &image_rs);
    put(
        &decode,
        "webp-extended-exif-icc.webp",
        &webp_extended(&lossless, 16, 16, &exif, &icc),
    );
    put(
        &decode,
        "webp-extended-lossy-exif.webp",
        &webp_extended(&lossy, 16, 16, &exif_orientation(8), &[]),
    );

    // ---- request_body: JSON bodies of v1/v2 submits (see the contract) ----
    let url = "https://example.org/input.png";
    let tiny_png = base64(&png(2, 2, 6, 8, false, &[]));
    let bodies: Vec<(&str, String)> = vec![
        ("minimal.json", format!(r#"{{"image":"{url}"}}"#)),
        (
            "sdk-default.json",
            format!(r#"{{"image":"{url}","desired_increase":4,"preserve_alpha":true}}"#),
        ),
        (
            "all-fields.json",
            format!(
                r#"{{"image":"{url}","desired_increase":2,"preserve_alpha":false,"visual_input_content_moderation":true,"visual_output_content_moderation":true,"base64":true,"model":"esrgan-slim"}}"#
            ),
        ),
        ("scale-string.json", format!(r#"{{"image":"{url}","desired_increase":"2"}}"#)),
        ("scale-float.json", format!(r#"{{"image":"{url}","desired_increase":4.0}}"#)),
        ("scale-bad.json", format!(r#"{{"image":"{url}","desired_increase":3}}"#)),
        ("scale-bool.json", format!(r#"{{"image":"{url}","desired_increase":true}}"#)),
        ("scale-huge.json", format!(r#"{{"image":"{url}","desired_increase":1e400}}"#)),
        ("scale-word.json", format!(r#"{{"image":"{url}","desired_increase":" four "}}"#)),
        (
            "nulls.json",
            r#"{"image":"x","desired_increase":null,"preserve_alpha":null,"visual_input_content_moderation":null,"visual_output_content_moderation":null,"base64":null,"model":null}"#.into(),
        ),
        ("flag-string.json", format!(r#"{{"image":"{url}","preserve_alpha":"yes"}}"#)),
        ("flag-number.json", format!(r#"{{"image":"{url}","visual_output_content_moderation":1}}"#)),
        ("model-number.json", format!(r#"{{"image":"{url}","model":7}}"#)),
        ("model-empty.json", format!(r#"{{"image":"{url}","model":""}}"#)),
        ("image-datauri.json", format!(r#"{{"image":"data:image/png;base64,{tiny_png}"}}"#)),
        ("image-base64.json", format!(r#"{{"image":"{tiny_png}","base64":true}}"#)),
        ("image-number.json", r#"{"image":42}"#.into()),
        ("image-blank.json", r#"{"image":" \t\n "}"#.into()),
        ("image-null.json", r#"{"image":null,"desired_increase":2}"#.into()),
        ("image-escapes.json", r#"{"image":"h\u0074tps:\/\/ex\u00e4mple.org\/\ud83d\ude00.png"}"#.into()),
        ("duplicate-keys.json", r#"{"image":"a","image":"b","desired_increase":2,"desired_increase":4}"#.into()),
        ("unknown-keys.json", format!(r#"{{"image":"{url}","seed":[1,2,{{"a":null}}],"extra":{{"b":[true,false,-0.0e-5]}}}}"#)),
        ("array.json", r#"["image","https://example.org/a.png"]"#.into()),
        ("string.json", r#""image""#.into()),
        ("null.json", "null".into()),
        ("number.json", "-12.5e3".into()),
        ("truncated.json", r#"{"image":"https://exa"#.into()),
        ("nested.json", format!("{}1{}", "[".repeat(200), "]".repeat(200))),
        ("whitespace.json", format!(" \r\n\t{{ \"image\" :\n\"{url}\" }} \n")),
        ("bom.json", format!("\u{feff}{{\"image\":\"{url}\"}}")),
    ];
    for (name, text) in &bodies {
        put(&body, name, text.as_bytes());
    }

    // ---- image_field: the `image` string ----
    let png_bytes = png(4, 4, 2, 8, false, &[]);
    let b64 = base64(&png_bytes);
    let b64_url = b64.replace('+', "-").replace('/', "_");
    let wrapped: String = b64
        .as_bytes()
        .chunks(19)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n ");
    let fields: Vec<(&str, String)> = vec![
        ("https.txt", url.into()),
        (
            "http-port-query.txt",
            "http://127.0.0.1:8080/x.jpg?q=1&r=%20#frag".into(),
        ),
        ("http-ipv6.txt", "http://[::1]:80/a.png".into()),
        ("http-ipv4-mapped.txt", "http://[::ffff:10.0.0.1]/a".into()),
        (
            "http-userinfo.txt",
            "https://user:pw@example.org:65535/a/../b/./c.png".into(),
        ),
        ("http-bad-port.txt", "https://example.org:99999/".into()),
        ("http-upper.txt", "HTTPS://EXAMPLE.ORG/A.PNG".into()),
        ("http-idn.txt", "https://bücher.example/ü.png".into()),
        ("http-no-host.txt", "http:///a.png".into()),
        ("http-whitespace.txt", format!(" \n\t{url} \r\n")),
        ("ftp.txt", "ftp://example.org/a.png".into()),
        ("file.txt", "file:///etc/passwd".into()),
        ("javascript.txt", "javascript:alert(1)".into()),
        ("scheme-only.txt", "gopher:".into()),
        ("datauri.txt", format!("data:image/png;base64,{b64}")),
        (
            "datauri-urlsafe.txt",
            format!("data:image/png;base64,{b64_url}"),
        ),
        (
            "datauri-wrapped.txt",
            format!("data:image/png;base64,{wrapped}"),
        ),
        (
            "datauri-params.txt",
            format!("data:image/png;name=a.png;base64,{b64}"),
        ),
        ("datauri-empty.txt", "data:;base64,".into()),
        ("datauri-plain.txt", "data:image/png,rawbytes".into()),
        ("datauri-no-comma.txt", "data:image/png;base64".into()),
        ("base64.txt", b64.clone()),
        ("base64-unpadded.txt", b64.trim_end_matches('=').into()),
        ("base64-urlsafe.txt", b64_url),
        ("base64-wrapped.txt", wrapped),
        ("base64-mixed-alphabets.txt", "ab+c-d/e_f==".into()),
        ("base64-bad.txt", "@@@not base64@@@".into()),
        ("base64-bad-padding.txt", "QUJD=QUJD".into()),
        (
            "unicode-space.txt",
            "\u{2003}QUJD\u{00a0}RA==\u{3000}".into(),
        ),
    ];
    for (name, text) in &fields {
        put(&field, name, text.as_bytes());
    }
    println!("wrote {written} seeds under {}", root.display());

    // Every image seed must decode, or it seeds nothing but the error paths.
    let mut names: Vec<_> = fs::read_dir(&decode)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("regress-") {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        match upres_engine::codec::decode(&bytes, &upres_fuzz::DECODE_LIMITS) {
            Ok(image) => println!(
                "{name}: {} bytes, {}x{} {:?}",
                bytes.len(),
                image.width(),
                image.height(),
                image.pixels.color()
            ),
            Err(err) => panic!("seed {name} does not decode: {err}"),
        }
    }
}
