//! Baked badges: an award's document carried inside the badge image, as the baking rules of
//! each version say.
//!
//! - Open Badges 2.0 (the Open Badges Baking Specification): a PNG gets an uncompressed `iTXt`
//!   chunk with keyword `openbadges` holding the assertion; an SVG gets
//!   `xmlns:openbadges="http://openbadges.org"` on its root and, directly inside it,
//!   `<openbadges:assertion verify="ASSERTION URL">` with the assertion in `<![CDATA[…]]>`
//!   (2.0 assertions here are hosted, so `verify` is the assertion's URL).
//! - Open Badges 3.0 ("Baked Badge"): keyword `openbadgecredential`, and
//!   `<openbadges:credential>` in namespace `https://purl.imsglobal.org/ob/v3p0`, holding the
//!   credential's JSON in CDATA, or, for a credential signed as a VC-JWT, its compact JWS in
//!   the `verify` attribute (and in the PNG chunk).
//!
//! Baking leaves every byte of the image other than the inserted chunk or element as it was.
//! A PNG chunk with the same keyword is replaced (a keyword may appear once); an SVG that
//! already carries a baked badge is refused.

use super::Version;
use anyhow::{Context, Result, anyhow, bail};
use quick_xml::events::{BytesCData, BytesEnd, BytesStart, Event};

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// A badge image that can be baked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    Png(Vec<u8>),
    Svg(String),
}

impl Image {
    /// Recognises a PNG by its signature and an SVG by an `<svg` root; `what` names the image
    /// in the error.
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Image> {
        if bytes.starts_with(&PNG_SIGNATURE) {
            return Ok(Image::Png(bytes));
        }
        match String::from_utf8(bytes) {
            Ok(text) if text.contains("<svg") => Ok(Image::Svg(text)),
            _ => bail!("{what} is neither a PNG nor an SVG image; only those can be baked"),
        }
    }

    /// The file extension of a baked copy.
    pub fn extension(&self) -> &'static str {
        match self {
            Image::Png(_) => "png",
            Image::Svg(_) => "svg",
        }
    }
}

/// What is baked in: a document's JSON, or the compact JWS of a signed 3.0 credential.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The JSON of the assertion or credential, and its URL.
    Json { text: &'a str, url: &'a str },
    /// A VC-JWT (3.0 only).
    Jws(&'a str),
}

impl Payload<'_> {
    fn text(&self) -> &str {
        match self {
            Payload::Json { text, .. } => text,
            Payload::Jws(token) => token,
        }
    }
}

/// The PNG `iTXt` keyword of a version.
pub fn png_keyword(version: Version) -> &'static str {
    match version {
        Version::V2 => "openbadges",
        Version::V3 => "openbadgecredential",
    }
}

/// `image` with `payload` baked in for `version`.
pub fn bake(image: &Image, version: Version, payload: Payload<'_>) -> Result<Vec<u8>> {
    if let (Version::V2, Payload::Jws(_)) = (version, payload) {
        bail!("Open Badges 2.0 assertions are hosted here: there is no signature to bake");
    }
    match image {
        Image::Png(bytes) => bake_png(bytes, png_keyword(version), payload.text()),
        Image::Svg(text) => bake_svg(text, version, payload).map(String::into_bytes),
    }
}

/// Inserts an uncompressed `iTXt` chunk (`keyword`, no language tag or translated keyword,
/// `text`) right after `IHDR`, dropping any other `iTXt` chunk with the same keyword.
pub fn bake_png(png: &[u8], keyword: &str, text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(png.len() + text.len() + keyword.len() + 17);
    out.extend_from_slice(&PNG_SIGNATURE);
    let mut rest = png.strip_prefix(&PNG_SIGNATURE[..]).ok_or_else(|| anyhow!("not a PNG file"))?;
    let mut first = true;
    while !rest.is_empty() {
        let (kind, data, chunk_len) = next_chunk(rest)?;
        if first && kind != *b"IHDR" {
            bail!("a PNG file whose first chunk is not IHDR");
        }
        let same_keyword = kind == *b"iTXt" && data.split(|b| *b == 0).next() == Some(keyword.as_bytes());
        if !same_keyword {
            out.extend_from_slice(&rest[..chunk_len]);
        }
        if first {
            let mut data = Vec::with_capacity(keyword.len() + 5 + text.len());
            data.extend_from_slice(keyword.as_bytes());
            // Null separator, compression flag 0, method 0, empty language tag, empty
            // translated keyword.
            data.extend_from_slice(&[0, 0, 0, 0, 0]);
            data.extend_from_slice(text.as_bytes());
            write_chunk(&mut out, b"iTXt", &data)?;
            first = false;
        }
        rest = &rest[chunk_len..];
        if kind == *b"IEND" {
            return Ok(out);
        }
    }
    bail!("a PNG file without an IEND chunk (truncated?)")
}

/// The type, data and whole length of the chunk `bytes` starts with.
fn next_chunk(bytes: &[u8]) -> Result<([u8; 4], &[u8], usize)> {
    let header: [u8; 8] = bytes.get(..8).and_then(|h| h.try_into().ok()).context("a truncated PNG chunk")?;
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let kind = [header[4], header[5], header[6], header[7]];
    let total = 12 + length;
    let data = bytes.get(8..8 + length).filter(|_| bytes.len() >= total).context("a truncated PNG chunk")?;
    Ok((kind, data, total))
}

fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Result<()> {
    let length = u32::try_from(data.len()).map_err(|_| anyhow!("a document too large for a PNG chunk"))?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    Ok(())
}

/// The SVG with the namespace declared on its root element and the baked element first inside
/// it; every other event is written back as it was read.
pub fn bake_svg(svg: &str, version: Version, payload: Payload<'_>) -> Result<String> {
    let (namespace, element) = match version {
        Version::V2 => ("http://openbadges.org", "openbadges:assertion"),
        Version::V3 => ("https://purl.imsglobal.org/ob/v3p0", "openbadges:credential"),
    };
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(svg.len() + payload.text().len() + 200));
    let mut baked = false;
    loop {
        let event = reader.read_event().map_err(|e| anyhow!("the SVG is not well-formed XML: {e}"))?;
        match event {
            Event::Eof => break,
            Event::Start(root) if !baked => {
                if root.local_name().as_ref() != b"svg" {
                    bail!("the image's root element is not <svg>");
                }
                if root.attributes().flatten().any(|a| a.key.as_ref() == b"xmlns:openbadges") {
                    bail!("the SVG already carries a baked badge (xmlns:openbadges on its root)");
                }
                let mut root = root.into_owned();
                root.push_attribute(("xmlns:openbadges", namespace));
                write(&mut writer, Event::Start(root))?;
                let mut open = BytesStart::new(element);
                match payload {
                    Payload::Json { text, url } => {
                        if version == Version::V2 {
                            open.push_attribute(("verify", url));
                        }
                        write(&mut writer, Event::Start(open))?;
                        for section in BytesCData::escaped(text) {
                            write(&mut writer, Event::CData(section))?;
                        }
                    }
                    Payload::Jws(token) => {
                        open.push_attribute(("verify", token));
                        write(&mut writer, Event::Start(open))?;
                    }
                }
                write(&mut writer, Event::End(BytesEnd::new(element)))?;
                baked = true;
            }
            Event::Empty(_) if !baked => bail!("the SVG's root element is empty (<svg/>): nothing to bake into"),
            other => write(&mut writer, other)?,
        }
    }
    if !baked {
        bail!("no <svg> element in the image");
    }
    String::from_utf8(writer.into_inner()).context("the baked SVG is not UTF-8")
}

fn write(writer: &mut quick_xml::Writer<Vec<u8>>, event: Event<'_>) -> Result<()> {
    writer.write_event(event).context("writing the baked SVG")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG: signature, IHDR, IDAT, IEND.
    fn tiny_png() -> Vec<u8> {
        let mut png = PNG_SIGNATURE.to_vec();
        write_chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]).expect("a chunk");
        write_chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 2, 0, 1]).expect("a chunk");
        write_chunk(&mut png, b"IEND", &[]).expect("a chunk");
        png
    }

    fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        let mut rest = &png[8..];
        let mut found = Vec::new();
        while !rest.is_empty() {
            let (kind, data, len) = next_chunk(rest).expect("a chunk");
            found.push((kind, data.to_vec()));
            rest = &rest[len..];
        }
        found
    }

    #[test]
    fn a_png_gets_one_uncompressed_itxt_chunk_after_ihdr_and_baking_again_replaces_it() {
        let once = bake_png(&tiny_png(), "openbadges", "first").expect("baked");
        let twice = bake_png(&once, "openbadges", "second").expect("baked again");
        let kinds: Vec<[u8; 4]> = chunks(&twice).iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [*b"IHDR", *b"iTXt", *b"IDAT", *b"IEND"]);
        assert_eq!(chunks(&twice)[1].1, b"openbadges\0\0\0\0\0second");
    }

    #[test]
    fn a_png_without_iend_or_with_a_cut_chunk_is_refused() {
        let png = tiny_png();
        assert!(bake_png(&png[..png.len() - 12], "openbadges", "x").is_err());
        assert!(bake_png(&png[..20], "openbadges", "x").is_err());
        assert!(bake_png(b"GIF89a", "openbadges", "x").is_err());
    }

    #[test]
    fn an_svg_keeps_its_content_and_gets_the_element_first_inside_its_root() {
        let svg = "<?xml version=\"1.0\"?>\n<!-- a medal -->\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
                   viewBox=\"0 0 8 8\"><circle r=\"4\" fill=\"#a&amp;b\"/></svg>\n";
        let json = r#"{"name": "tricky ]]> name"}"#;
        let baked =
            bake_svg(svg, Version::V2, Payload::Json { text: json, url: "https://x.org/a/1.json" }).expect("baked");
        assert_eq!(
            baked,
            "<?xml version=\"1.0\"?>\n<!-- a medal -->\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             viewBox=\"0 0 8 8\" xmlns:openbadges=\"http://openbadges.org\"><openbadges:assertion \
             verify=\"https://x.org/a/1.json\"><![CDATA[{\"name\": \"tricky ]]]]><![CDATA[> \
             name\"}]]></openbadges:assertion><circle r=\"4\" fill=\"#a&amp;b\"/></svg>\n"
        );
        let again = bake_svg(&baked, Version::V2, Payload::Json { text: json, url: "u" });
        assert!(again.is_err_and(|e| e.to_string().contains("already carries a baked badge")));
    }

    #[test]
    fn a_signed_credential_is_baked_into_an_svg_as_its_verify_attribute() {
        let baked = bake_svg("<svg></svg>", Version::V3, Payload::Jws("a.b.c")).expect("baked");
        assert_eq!(
            baked,
            "<svg xmlns:openbadges=\"https://purl.imsglobal.org/ob/v3p0\"><openbadges:credential \
             verify=\"a.b.c\"></openbadges:credential></svg>"
        );
    }
}
