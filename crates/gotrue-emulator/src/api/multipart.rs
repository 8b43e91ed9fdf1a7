//! The one piece of `multipart/form-data` the Storage stand-in reads: the first file part,
//! which is what Storage keeps when storage-js uploads a `Blob` or `File` (a `FormData`
//! with `cacheControl` and the file under the empty name).

use axum::body::Bytes;

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The bytes and content type of the first part with a `filename`, if any.
pub fn first_file(boundary: &str, body: &Bytes) -> Option<(Bytes, String)> {
    let delimiter = format!("\r\n--{boundary}");
    // The first delimiter may open the body without the CRLF before it.
    let mut pos = find(body, &delimiter.as_bytes()[2..], 0)? + delimiter.len() - 2;
    loop {
        if body.get(pos..pos + 2)? != b"\r\n" {
            return None; // "--": the closing delimiter
        }
        let head_start = pos + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let head = std::str::from_utf8(&body[head_start..head_end]).ok()?;
        let start = head_end + 4;
        let end = find(body, delimiter.as_bytes(), start)?;
        let mut is_file = false;
        let mut content_type = "application/octet-stream".to_owned();
        for line in head.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-disposition") {
                is_file = value.split(';').any(|p| p.trim().starts_with("filename"));
            } else if name.eq_ignore_ascii_case("content-type") {
                value.trim().clone_into(&mut content_type);
            }
        }
        if is_file {
            return Some((body.slice(start..end), content_type));
        }
        pos = end + delimiter.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_file_part() {
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let b = boundary(ct).unwrap();
        assert_eq!(b, "XyZ");
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"\"; filename=\"blob\"\r\nContent-Type: image/png\r\n\r\n\
\x00\r\n--X\xff\r\n--XyZ--\r\n",
        );
        let (bytes, content_type) = first_file(&b, &body).unwrap();
        assert_eq!(&bytes[..], b"\x00\r\n--X\xff");
        assert_eq!(content_type, "image/png");
        assert!(boundary("application/json").is_none());
        let no_file = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n",
        );
        assert!(first_file(&b, &no_file).is_none());
    }
}
