//! Mail templates rendered the way GoTrue renders them: Go's `html/template`
//! (`internal/mailer/templatemailer/template.go` parses every subject and body with it).
//!
//! `html/template` escapes each `{{ .X }}` by where it stands in the HTML, and that is what
//! decides whether a mailed link works:
//!
//! - in text, and in an ordinary quoted attribute: HTML escaping (`&` → `&amp;`, `"` →
//!   `&#34;`, `'` → `&#39;`, `+` → `&#43;`, `<`, `>`);
//! - at the very start of a URL attribute (`href`, `src`, `action`, … and any attribute
//!   whose name holds `src`, `uri` or `url`): the value must be relative or use `http`,
//!   `https` or `mailto`, or the whole value becomes `#ZgotmplZ` (Go's `urlFilter`); it is
//!   then normalised (characters a URL may not hold are percent-encoded, `%XX` kept) and
//!   HTML-escaped. So `href="{{ .RedirectTo }}…"` with `tessera://…` renders a dead
//!   `#ZgotmplZ…` link;
//! - later in a URL attribute before any `?` or `#`: normalised and HTML-escaped;
//! - in a URL attribute after a `?` or `#` (a query or fragment): percent-encoded as a query
//!   component (`urlEscaper`), then HTML-escaped.
//!
//! HTML comments in the template text are dropped, as Go drops them.
//!
//! The subset: actions `{{ .Name }}` and `{{ .Data.key }}` (with `{{-` / `-}}` trimming)
//! and `{{/* comments */}}`. Anything else — `if`, `range`, pipelines, functions, an action
//! inside `<script>`, `<style>`, an event handler, a `style` attribute, an unquoted
//! attribute or a tag itself — is refused when the template is parsed, with the reason.

use std::fmt;

use serde_json::Value;

/// A template the emulator cannot render as `html/template` would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template: literal text and escaped actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action { path: Vec<String>, escape: Escape },
}

/// How an action's value is escaped, by its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Text, RCDATA, or a plain quoted attribute.
    Html,
    /// Inside an HTML comment: the action renders nothing.
    Drop,
    /// A URL attribute: `filter` at its start (urlPartNone), then normalise or (in a query
    /// or fragment) escape, then HTML-escape.
    Url { filter: bool, normalize: bool },
}

/// What kind of value an attribute holds (Go's `attrType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrKind {
    Plain,
    Url,
    /// Script or style: no action may stand there.
    Unsupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlPart {
    None,
    PreQuery,
    QueryOrFrag,
}

/// Where in the HTML the text so far has left us.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Text,
    /// Inside a start or end tag, between attributes.
    Tag {
        element: String,
    },
    /// Reading an attribute name.
    AttrName {
        element: String,
        name: String,
    },
    /// After an attribute name, before `=` or the next attribute.
    AfterName {
        element: String,
        name: String,
    },
    /// After `=`, before the value.
    BeforeValue {
        element: String,
        name: String,
    },
    /// Inside a quoted attribute value.
    Attr {
        element: String,
        quote: u8,
        kind: AttrKind,
        url: UrlPart,
    },
    /// Inside an unquoted attribute value.
    Unquoted {
        element: String,
    },
    /// The content of `<script>`, `<style>`, `<textarea>` or `<title>`, until its end tag.
    Raw {
        element: String,
    },
    /// Inside an HTML comment: dropped from the output, actions too.
    Comment,
}

impl State {
    fn element(&self) -> &str {
        match self {
            Self::Text | Self::Comment => "",
            Self::Tag { element }
            | Self::AttrName { element, .. }
            | Self::AfterName { element, .. }
            | Self::BeforeValue { element, .. }
            | Self::Attr { element, .. }
            | Self::Unquoted { element }
            | Self::Raw { element } => element,
        }
    }
}

/// Go's `attrType`, for the attributes a mail uses.
fn attr_kind(name: &str) -> AttrKind {
    let name = name.to_ascii_lowercase();
    let name = if let Some(rest) = name.strip_prefix("data-") {
        rest.to_owned()
    } else if let Some((prefix, short)) = name.split_once(':') {
        if prefix == "xmlns" {
            return AttrKind::Url;
        }
        short.to_owned()
    } else {
        name
    };
    match name.as_str() {
        "action" | "archive" | "background" | "cite" | "classid" | "codebase" | "data"
        | "formaction" | "href" | "icon" | "longdesc" | "manifest" | "poster" | "profile"
        | "src" | "usemap" | "xmlns" => return AttrKind::Url,
        "style" | "srcset" => return AttrKind::Unsupported,
        _ => {}
    }
    if name.starts_with("on") {
        return AttrKind::Unsupported;
    }
    if name.contains("src") || name.contains("uri") || name.contains("url") {
        return AttrKind::Url;
    }
    AttrKind::Plain
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Advances the HTML context over literal text, returning the text with HTML comments
/// removed (Go elides them).
fn advance(mut state: State, text: &str) -> (State, String) {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match &mut state {
            State::Text => {
                if text[i..].starts_with("<!--") {
                    state = State::Comment;
                    i += 4;
                    continue;
                }
                if b == b'<'
                    && let Some(&next) = bytes.get(i + 1)
                    && (next.is_ascii_alphabetic() || next == b'/')
                {
                    let start = if next == b'/' { i + 2 } else { i + 1 };
                    let end = bytes[start..]
                        .iter()
                        .position(|c| is_space(*c) || *c == b'>' || *c == b'/')
                        .map_or(bytes.len(), |p| start + p);
                    let element = if next == b'/' {
                        String::new()
                    } else {
                        text[start..end].to_ascii_lowercase()
                    };
                    out.extend_from_slice(&bytes[i..end]);
                    i = end;
                    state = State::Tag { element };
                    continue;
                }
                out.push(b);
            }
            State::Tag { element } => {
                if b == b'>' {
                    let element = std::mem::take(element);
                    state = if matches!(element.as_str(), "script" | "style" | "textarea" | "title")
                    {
                        State::Raw { element }
                    } else {
                        State::Text
                    };
                } else if !is_space(b) && b != b'/' {
                    let element = std::mem::take(element);
                    state = State::AttrName {
                        element,
                        name: (b as char).to_string(),
                    };
                }
                out.push(b);
            }
            State::AttrName { element, name } => {
                if is_space(b) || b == b'=' || b == b'>' || b == b'/' {
                    let element = std::mem::take(element);
                    let name = std::mem::take(name);
                    state = State::AfterName { element, name };
                    continue;
                }
                name.push(b as char);
                out.push(b);
            }
            State::AfterName { element, name } => {
                if b == b'=' {
                    let element = std::mem::take(element);
                    let name = std::mem::take(name);
                    state = State::BeforeValue { element, name };
                    out.push(b'=');
                } else if is_space(b) {
                    out.push(b);
                } else {
                    let element = std::mem::take(element);
                    state = State::Tag { element };
                    continue;
                }
            }
            State::BeforeValue { element, name } => {
                if is_space(b) {
                    out.push(b);
                } else if b == b'"' || b == b'\'' {
                    let element = std::mem::take(element);
                    let kind = attr_kind(name);
                    state = State::Attr {
                        element,
                        quote: b,
                        kind,
                        url: UrlPart::None,
                    };
                    out.push(b);
                } else {
                    let element = std::mem::take(element);
                    state = State::Unquoted { element };
                    continue;
                }
            }
            State::Attr {
                element,
                quote,
                kind,
                url,
            } => {
                if b == *quote {
                    let element = std::mem::take(element);
                    state = State::Tag { element };
                    out.push(b);
                } else {
                    if *kind == AttrKind::Url {
                        if b == b'?' || b == b'#' {
                            *url = UrlPart::QueryOrFrag;
                        } else if *url == UrlPart::None && !is_space(b) {
                            *url = UrlPart::PreQuery;
                        }
                    }
                    out.push(b);
                }
            }
            State::Unquoted { element } => {
                if is_space(b) || b == b'>' {
                    let element = std::mem::take(element);
                    state = State::Tag { element };
                    continue;
                }
                out.push(b);
            }
            State::Comment => {
                if text[i..].starts_with("-->") {
                    state = State::Text;
                    i += 3;
                    continue;
                }
                // Dropped (bytes of multi-byte characters too).
                i += 1;
                continue;
            }
            State::Raw { element } => {
                let close = format!("</{element}");
                if text[i..].len() >= close.len()
                    && text[i..i + close.len()].eq_ignore_ascii_case(&close)
                {
                    state = State::Tag {
                        element: String::new(),
                    };
                    out.extend_from_slice(&bytes[i..i + close.len()]);
                    i += close.len();
                    continue;
                }
                out.push(b);
            }
        }
        i += 1;
    }
    // Only whole ASCII-delimited pieces were dropped, so the bytes are still UTF-8.
    (state, String::from_utf8_lossy(&out).into_owned())
}

/// The escaping an action gets in `state`, or why it may not stand there.
fn escape_for(state: &State) -> Result<Escape, TemplateError> {
    let unsupported = |what: &str| {
        Err(TemplateError(format!(
            "an action {what} is not supported by the emulator's html/template subset"
        )))
    };
    match state {
        State::Text => Ok(Escape::Html),
        State::Comment => Ok(Escape::Drop),
        State::Raw { element } if matches!(element.as_str(), "textarea" | "title") => {
            Ok(Escape::Html)
        }
        State::Raw { element } => unsupported(&format!("inside <{element}>")),
        State::Attr { kind, url, .. } => match kind {
            AttrKind::Plain => Ok(Escape::Html),
            AttrKind::Url => Ok(match url {
                UrlPart::None => Escape::Url {
                    filter: true,
                    normalize: true,
                },
                UrlPart::PreQuery => Escape::Url {
                    filter: false,
                    normalize: true,
                },
                UrlPart::QueryOrFrag => Escape::Url {
                    filter: false,
                    normalize: false,
                },
            }),
            AttrKind::Unsupported => unsupported("in a script, style or srcset attribute"),
        },
        State::Unquoted { .. } | State::BeforeValue { .. } => {
            unsupported("in an unquoted attribute value")
        }
        State::Tag { .. } | State::AttrName { .. } | State::AfterName { .. } => {
            unsupported("inside a tag")
        }
    }
}

impl Template {
    /// Parses a template, working out each action's escaping from its HTML context.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut state = State::Text;
        let mut rest = source;
        let mut trim_next = false;
        loop {
            let (text, action) = match rest.find("{{") {
                Some(at) => (&rest[..at], Some(&rest[at + 2..])),
                None => (rest, None),
            };
            let mut text = if trim_next { text.trim_start() } else { text };
            let mut after = None;
            if let Some(action) = action {
                let end = action
                    .find("}}")
                    .ok_or_else(|| TemplateError("unclosed action: no \"}}\"".into()))?;
                let mut inner = &action[..end];
                if let Some(stripped) = inner.strip_prefix("- ") {
                    text = text.trim_end();
                    inner = stripped;
                } else if inner.starts_with('-') && inner.len() > 1 && is_space(inner.as_bytes()[1])
                {
                    text = text.trim_end();
                    inner = &inner[1..];
                }
                trim_next = false;
                if let Some(stripped) = inner.strip_suffix(" -") {
                    trim_next = true;
                    inner = stripped;
                }
                after = Some((inner.trim(), &action[end + 2..]));
            }
            let (next_state, kept) = advance(state, text);
            state = next_state;
            if !kept.is_empty() {
                parts.push(Part::Text(kept));
            }
            let Some((inner, remainder)) = after else {
                break;
            };
            rest = remainder;
            if inner.starts_with("/*") && inner.ends_with("*/") {
                continue;
            }
            let path = parse_field(inner)?;
            let escape = escape_for(&state).map_err(|e| {
                TemplateError(format!("{{{{ {inner} }}}}: {e} (in <{}>)", state.element()))
            })?;
            parts.push(Part::Action { path, escape });
        }
        Ok(Self { parts })
    }

    /// Whether the template shows `{{ .name }}` anywhere (a mail carries a one-time code
    /// only if its template asks for `{{ .Token }}`).
    pub fn uses(&self, name: &str) -> bool {
        self.parts.iter().any(|p| match p {
            Part::Action { path, .. } => path.first().is_some_and(|n| n == name),
            Part::Text(_) => false,
        })
    }

    /// Renders with `data` (an object: `SiteURL`, `ConfirmationURL`, `Token`, …, and `Data`,
    /// the user's metadata). A missing value renders as nothing.
    pub fn render(&self, data: &Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action { path, escape } => {
                    let value = path
                        .iter()
                        .try_fold(data, |v, key| v.get(key))
                        .map(display)
                        .unwrap_or_default();
                    out.push_str(&escape_value(&value, *escape));
                }
            }
        }
        out
    }
}

/// `.Name` or `.Name.key`: the only actions the subset knows.
fn parse_field(inner: &str) -> Result<Vec<String>, TemplateError> {
    let refuse = || {
        TemplateError(format!(
            "{{{{ {inner} }}}}: only {{{{ .Name }}}} and {{{{ .Data.key }}}} are supported by \
             the emulator's html/template subset"
        ))
    };
    let field = inner.strip_prefix('.').ok_or_else(refuse)?;
    let path: Vec<String> = field.split('.').map(str::to_owned).collect();
    if path
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Err(refuse());
    }
    Ok(path)
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Go prints a map as `map[k:v]`; no stock template does this.
        other => other.to_string(),
    }
}

fn escape_value(value: &str, escape: Escape) -> String {
    match escape {
        Escape::Html => html_escape(value),
        Escape::Drop => String::new(),
        Escape::Url { filter, normalize } => {
            if filter && !is_safe_url(value) {
                return "#ZgotmplZ".to_owned();
            }
            html_escape(&process_url(value, normalize))
        }
    }
}

/// Go's `htmlEscaper` / `attrEscaper` (the same table).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `isSafeURL`: relative, or a scheme of `http`, `https` or `mailto`.
fn is_safe_url(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) if !scheme.contains('/') => ["http", "https", "mailto"]
            .iter()
            .any(|ok| scheme.eq_ignore_ascii_case(ok)),
        _ => true,
    }
}

/// Go's `processURLOnto`: `normalize` keeps reserved characters and valid `%XX`; otherwise
/// everything but unreserved characters is percent-encoded.
fn process_url(s: &str, normalize: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    for (i, &c) in bytes.iter().enumerate() {
        let keep = match c {
            b'!' | b'#' | b'$' | b'&' | b'*' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?'
            | b'@' | b'[' | b']' => normalize,
            b'-' | b'.' | b'_' | b'~' => true,
            b'%' => {
                normalize
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            c => c.is_ascii_alphanumeric(),
        };
        if keep {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02x}"));
        }
    }
    out
}

/// The `href` values of the `<a>` elements of rendered HTML, entity-decoded: the links a
/// mail client would open.
pub fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("href=") {
        let start = from + at + 5;
        let Some(&quote) = html.as_bytes().get(start) else {
            break;
        };
        let (value, next) = if quote == b'"' || quote == b'\'' {
            let body = &html[start + 1..];
            match body.find(quote as char) {
                Some(end) => (&body[..end], start + 1 + end + 1),
                None => break,
            }
        } else {
            let body = &html[start..];
            let end = body
                .find(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or(body.len());
            (&body[..end], start + end)
        };
        found.push(decode_entities(value));
        from = next;
    }
    found
}

/// Decodes the character references `html_escape` writes (and `&quot;`).
pub fn decode_entities(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#43;", "+")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
