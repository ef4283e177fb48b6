//! The byte formats the seed generator writes by hand: PNG chunks and "stored" zlib, TIFF/EXIF
//! orientation, a profile-shaped ICC blob, extended (VP8X) WebP, base64; and the pixel patterns
//! it encodes.

/// Deterministic pseudo-random bytes (a small LCG) mixed with a gradient.
pub fn pattern(len: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|i| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((i * 5) as u8).wrapping_add((state >> 28) as u8)
        })
        .collect()
}

pub fn rgba8(w: u32, h: u32) -> Vec<u8> {
    let mut p = pattern(w * h * 4, 3);
    for (i, px) in p.chunks_mut(4).enumerate() {
        // Some fully transparent and some opaque pixels.
        px[3] = match i % 5 {
            0 => 0,
            1 | 2 => 255,
            _ => px[3],
        };
    }
    p
}

/// A PNG written by hand: any colour type and bit depth, optional Adam7 interlacing, extra
/// chunks before IDAT, "stored" deflate blocks (no compression).
pub fn png(
    w: u32,
    h: u32,
    color: u8,
    depth: u8,
    interlaced: bool,
    extra: &[([u8; 4], Vec<u8>)],
) -> Vec<u8> {
    let channels = match color {
        0 | 3 => 1,
        4 => 2,
        2 => 3,
        _ => 4,
    };
    let bits_per_pixel = channels * depth as u32;
    let row_bytes = |width: u32| (width * bits_per_pixel).div_ceil(8) as usize;
    let mut raw = Vec::new();
    let mut seed = 11;
    let mut push_pass = |pw: u32, ph: u32, raw: &mut Vec<u8>| {
        if pw == 0 || ph == 0 {
            return;
        }
        for y in 0..ph {
            let filter = (y % 5) as u8; // every filter type
            raw.push(filter);
            seed += 1;
            let mut row = pattern(row_bytes(pw) as u32, seed);
            if color == 3 {
                // Palette indices within the palette.
                let max = (1u32 << depth).min(16) as u8;
                if depth == 8 {
                    row.iter_mut().for_each(|b| *b %= max);
                }
            }
            raw.extend_from_slice(&row);
        }
    };
    if interlaced {
        const PASSES: [(u32, u32, u32, u32); 7] = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ];
        for (x0, y0, dx, dy) in PASSES {
            let pw = (w + dx - 1 - x0) / dx;
            let ph = (h + dy - 1 - y0) / dy;
            push_pass(
                if w > x0 { pw } else { 0 },
                if h > y0 { ph } else { 0 },
                &mut raw,
            );
        }
    } else {
        push_pass(w, h, &mut raw);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, interlaced as u8]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        chunk(&mut out, kind, data);
    }
    if color == 3 {
        let entries = (1usize << depth).min(16);
        let palette: Vec<u8> = (0..entries * 3).map(|i| (i * 37 % 256) as u8).collect();
        chunk(&mut out, b"PLTE", &palette);
        let trns: Vec<u8> = (0..entries).map(|i| (i * 85 % 256) as u8).collect();
        chunk(&mut out, b"tRNS", &trns);
    }
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind.as_slice(), data].concat()).to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// zlib stream of "stored" deflate blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A little-endian TIFF header with one IFD entry: Orientation = `value`.
pub fn exif_orientation(value: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&value.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

/// Not a valid colour profile, but shaped like one (128-byte header, tag count 0).
pub fn fake_icc() -> Vec<u8> {
    let mut icc = vec![0u8; 132];
    icc[..4].copy_from_slice(&132u32.to_be_bytes());
    icc[12..16].copy_from_slice(b"mntr");
    icc[16..20].copy_from_slice(b"RGB ");
    icc[36..40].copy_from_slice(b"acsp");
    icc
}

/// Re-wraps a simple WebP (`RIFF....WEBPVP8 ` or `VP8L`) as extended (VP8X) with ICC and EXIF.
pub fn webp_extended(simple: &[u8], w: u32, h: u32, exif: &[u8], icc: &[u8]) -> Vec<u8> {
    let image_chunk = &simple[12..];
    let mut flags = 0u8;
    if !icc.is_empty() {
        flags |= 0x20;
    }
    if !exif.is_empty() {
        flags |= 0x08;
    }
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    if !icc.is_empty() {
        riff_chunk(&mut body, b"ICCP", icc);
    }
    body.extend_from_slice(image_chunk);
    if !exif.is_empty() {
        riff_chunk(&mut body, b"EXIF", exif);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn riff_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        for _ in chunk.len()..3 {
            out.push('=');
        }
    }
    out
}
