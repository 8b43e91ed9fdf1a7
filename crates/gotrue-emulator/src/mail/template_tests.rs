//! Tests of `template.rs`: rendering as Go's `html/template` does, and what it refuses.

use super::*;
use serde_json::json;

/// Each template rendered by Go 1.26.8's `html/template` with the data below; the
/// expected strings are its output, recorded once (docs/fidelity.md).
#[test]
fn renders_as_go_html_template_does() {
    let data = json!({
        "RedirectTo": "tessera://auth/callback?flow=abc",
        "TokenHash": "pkce_1f",
        "ConfirmationURL": "https://a.example/verify?token=pkce_x&type=signup&redirect_to=tessera%3A%2F%2Fauth",
        "Email": "a+b@example.com",
        "Data": {"name": "Ada <x>"},
        "SiteURL": "http://localhost:3000",
    });
    let cases = [
        (
            r#"<a href="{{ .RedirectTo }}&token_hash={{ .TokenHash }}&type=magiclink">x</a>"#,
            "<a href=\"#ZgotmplZ&token_hash=pkce_1f&type=magiclink\">x</a>",
        ),
        (
            r#"<a href="{{ .ConfirmationURL }}">go</a> <a href="https://x.example/c?e={{ .Email }}">e</a> {{ .Email }}"#,
            "<a href=\"https://a.example/verify?token=pkce_x&amp;type=signup&amp;redirect_to=tessera%3A%2F%2Fauth\">go</a> <a href=\"https://x.example/c?e=a%2bb%40example.com\">e</a> a&#43;b@example.com",
        ),
        (
            "<!-- {{ .Email }} -->\n<p>Hi</p><a href=\"{{ .ConfirmationURL }}\">x</a>",
            "\n<p>Hi</p><a href=\"https://a.example/verify?token=pkce_x&amp;type=signup&amp;redirect_to=tessera%3A%2F%2Fauth\">x</a>",
        ),
        (
            "<p>{{ .Missing }}|{{ .Data.name }}|{{ .Data.nope }}</p>",
            "<p>|Ada &lt;x&gt;|</p>",
        ),
        (
            r#"<a href="{{ .SiteURL }}/auth/confirm?token_hash={{ .TokenHash }}&type=email&next={{ .RedirectTo }}">x</a>"#,
            "<a href=\"http://localhost:3000/auth/confirm?token_hash=pkce_1f&type=email&next=tessera%3a%2f%2fauth%2fcallback%3fflow%3dabc\">x</a>",
        ),
        (
            r#"<a title="{{ .Email }}" href='{{ .SiteURL }}'>{{- .Email -}}  </a>"#,
            "<a title=\"a&#43;b@example.com\" href='http://localhost:3000'>a&#43;b@example.com</a>",
        ),
        (
            r#"<a href="https://x/{{ .Email }}/y">x</a>"#,
            "<a href=\"https://x/a&#43;b@example.com/y\">x</a>",
        ),
        (
            r#"<title>{{ .Email }}</title><a data-url="{{ .RedirectTo }}">"#,
            "<title>a&#43;b@example.com</title><a data-url=\"#ZgotmplZ\">",
        ),
        (
            r#"<a href="  {{ .RedirectTo }}">x</a>"#,
            "<a href=\"  #ZgotmplZ\">x</a>",
        ),
        (
            r#"<a href="{{ .SiteURL }}{{ .RedirectTo }}">x</a>"#,
            "<a href=\"http://localhost:3000#ZgotmplZ\">x</a>",
        ),
    ];
    for (template, expected) in cases {
        let parsed = Template::parse(template).unwrap();
        assert_eq!(parsed.render(&data), expected, "{template}");
    }
}

#[test]
fn the_subset_refuses_what_it_cannot_render_faithfully() {
    for bad in [
        "{{ if .Token }}x{{ end }}",
        "<script>var t = '{{ .Token }}'</script>",
        "<a onclick=\"{{ .Token }}\">",
        "<a href={{ .Token }}>",
        "<p {{ .Token }}>",
        "{{ .Token | html }}",
        "{{ .Token",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn links_are_the_hrefs_a_mail_client_opens() {
    let html = "<p>x</p><a href=\"https://a.example/v?a=1&amp;b=2\">x</a><a href='#ZgotmplZ'>y</a>";
    assert_eq!(
        links(html),
        vec![
            "https://a.example/v?a=1&b=2".to_owned(),
            "#ZgotmplZ".to_owned()
        ]
    );
    let t = Template::parse("<p>{{ .Token }}</p>").unwrap();
    assert!(t.uses("Token") && !t.uses("TokenHash"));
}
