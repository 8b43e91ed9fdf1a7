//! The client side of a scenario: HTTP to the target, its mail, and what a scenario may
//! ask of time.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::target::{Mailbox, Target};
pub use gotrue_wire::{
    Reply, access, claims, fragment, params_of, pkce, query, refresh_token, user_id,
};

/// The password every scenario's users get.
pub const PASSWORD: &str = "correct-horse-9";

/// A mail as its recipient sees it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub html: String,
    /// The links' targets, entity-decoded.
    pub links: Vec<String>,
}

impl Mail {
    /// The first link: what "click the link in the mail" opens.
    #[track_caller]
    pub fn link(&self) -> &str {
        self.links
            .first()
            .unwrap_or_else(|| panic!("a link in the mail {:?}", self.html))
    }

    /// The `type` of the mail's link (`signup`, `magiclink`, `recovery`, …).
    #[track_caller]
    pub fn link_type(&self) -> String {
        query(self.link()).get("type").cloned().unwrap_or_default()
    }

    /// The token hash the mail's link carries (its `token`): what `POST /verify` takes as
    /// `token_hash`.
    #[track_caller]
    pub fn token_hash(&self) -> String {
        query(self.link())
            .get("token")
            .cloned()
            .unwrap_or_else(|| panic!("a token in {}", self.link()))
    }

    /// The code the mail shows; fails when it shows none.
    #[track_caller]
    pub fn the_code(&self) -> String {
        self.code()
            .unwrap_or_else(|| panic!("a code in the mail {:?}", self.html))
    }

    /// The one-time code the mail shows, if it shows one: a run of 6 to 10 digits in its
    /// text (not inside a link).
    pub fn code(&self) -> Option<String> {
        let mut text = String::new();
        let mut in_tag = false;
        for c in self.html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.split(|c: char| !c.is_ascii_digit())
            .find(|run| (6..=10).contains(&run.len()))
            .map(str::to_owned)
    }
}

/// A scenario's handle on its target.
#[derive(Debug, Clone)]
pub struct Env {
    pub target: Target,
    pub http: reqwest::Client,
}

/// Stops a scenario where the target cannot run it; the runner reports it as skipped.
#[track_caller]
pub fn skip(why: &str) -> ! {
    panic!("SKIP: {why}")
}

impl Env {
    pub fn new(target: Target) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("HTTP client: {e}"));
        Self { target, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.target.url, path)
    }

    /// A fresh address for this scenario (a real server keeps its users between runs).
    pub fn email(&self, name: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{name}-{}@tessera.dev", &id[..10])
    }

    /// Ends the scenario as skipped unless the emulator's test routes are there.
    #[track_caller]
    pub fn require_emulator(&self, why: &str) {
        if !self.target.emulator_routes {
            skip(&format!("needs the emulator's test routes ({why})"));
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let mut req = self
            .http
            .request(method, url)
            .header("apikey", &self.target.anon_key);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}"));
        Reply::read(resp).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        self.send(Method::GET, path, bearer, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body), &[]).await
    }

    pub async fn post_auth(&self, path: &str, bearer: &str, body: Option<Value>) -> Reply {
        self.send(Method::POST, path, Some(bearer), body, &[]).await
    }

    pub async fn put_auth(&self, path: &str, bearer: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(bearer), Some(body), &[])
            .await
    }

    /// Opens a link as a browser's first request would (no redirect followed).
    pub async fn open(&self, link: &str) -> Reply {
        let resp = self
            .http
            .get(link)
            .send()
            .await
            .unwrap_or_else(|e| panic!("opening {link}: {e}"));
        Reply::read(resp).await
    }

    pub async fn sign_up(&self, email: &str) -> Value {
        self.post("/signup", json!({"email": email, "password": PASSWORD}))
            .await
            .assert_ok()
            .clone()
    }

    pub async fn sign_in(&self, email: &str) -> Value {
        self.post(
            "/token?grant_type=password",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .assert_ok()
        .clone()
    }

    /// A confirmed user with a session: signed up, then confirmed through the admin API
    /// when the profile wants confirmation.
    pub async fn signed_in_user(&self, email: &str) -> Value {
        let created = self
            .admin(
                Method::POST,
                "/admin/users",
                Some(json!({"email": email, "password": PASSWORD, "email_confirm": true})),
            )
            .await;
        created.assert_ok();
        self.sign_in(email).await
    }

    pub async fn refresh(&self, token: &str) -> Reply {
        self.post(
            "/token?grant_type=refresh_token",
            json!({ "refresh_token": token }),
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let key = self.target.service_role_key.clone();
        self.send(method, path, Some(&key), body, &[]).await
    }

    /// The mail sent to `to`, oldest first (waits up to 5 s for a real server's mail to
    /// arrive when there is none yet).
    pub async fn mails(&self, to: &str) -> Vec<Mail> {
        for _ in 0..50 {
            let mails = self.mails_now(to).await;
            if !mails.is_empty() || self.target.emulator_routes {
                return mails;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Vec::new()
    }

    async fn mails_now(&self, to: &str) -> Vec<Mail> {
        match &self.target.mailbox {
            Mailbox::Emulator => {
                let reply = self
                    .get(&format!("/_emulator/mail?to={}", urlencode(to)), None)
                    .await;
                reply
                    .json
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|m| Mail {
                        to: m["to"].as_str().unwrap_or_default().to_owned(),
                        subject: m["subject"].as_str().unwrap_or_default().to_owned(),
                        html: m["html"].as_str().unwrap_or_default().to_owned(),
                        links: m["links"]
                            .as_array()
                            .map(|l| {
                                l.iter()
                                    .filter_map(|v| v.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            }
            Mailbox::Smtp(sink) => sink
                .mails_to(to)
                .into_iter()
                .map(|m| Mail {
                    links: gotrue_emulator::mail_links(&m.html),
                    to: m.to,
                    subject: m.subject,
                    html: m.html,
                })
                .collect(),
        }
    }

    /// The newest mail to `to`; waits for `count` mails in all (a real server delivers in
    /// the background).
    pub async fn nth_mail(&self, to: &str, count: usize) -> Mail {
        for _ in 0..50 {
            let mut mails = self.mails(to).await;
            if mails.len() >= count {
                return mails.swap_remove(count - 1);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no mail number {count} to {to}")
    }

    /// The newest mail to `to`.
    pub async fn last_mail(&self, to: &str) -> Mail {
        let mut mails = self.mails(to).await;
        mails.pop().unwrap_or_else(|| panic!("a mail to {to}"))
    }

    /// Makes `secs` pass for the flow states `ids` (the `state` of an OAuth sign-in, or the
    /// user id of a mailed flow): the emulator's clock moves; on a real server the rows are
    /// back-dated through `psql`, or the scenario is skipped.
    pub async fn age_flow_states(&self, secs: i64, user_or_flow_ids: &[&str]) {
        self.back_date(secs, user_or_flow_ids, |id| {
            format!(
                "update auth.flow_state set created_at = created_at - interval '{secs} seconds', \
                 auth_code_issued_at = auth_code_issued_at - interval '{secs} seconds' \
                 where id::text = '{id}' or user_id::text = '{id}'"
            )
        })
        .await;
    }

    /// Makes `secs` pass for the refresh tokens of the sessions `ids` (for the reuse
    /// interval): the emulator's clock moves; on a real server their rows are back-dated
    /// through `psql`, or the scenario is skipped.
    pub async fn age_refresh_tokens(&self, secs: i64, session_ids: &[&str]) {
        self.back_date(secs, session_ids, |id| {
            format!(
                "update auth.refresh_tokens set created_at = created_at - interval '{secs} seconds', \
                 updated_at = updated_at - interval '{secs} seconds' where session_id::text = '{id}'"
            )
        })
        .await;
    }

    /// Moves the emulator's clock by `secs`; on a real server runs `update(id)` for each id
    /// through `psql`, or skips the scenario when no database was given.
    async fn back_date(&self, secs: i64, ids: &[&str], update: impl Fn(&str) -> String) {
        if self.target.emulator_routes {
            self.advance(secs).await;
            return;
        }
        let Some(db) = &self.target.database else {
            skip("needs time to pass: give --database to back-date rows");
        };
        for id in ids {
            psql(db, &update(id));
        }
    }

    /// The ids of the user's live sessions, oldest first: the emulator's session list, or
    /// a real server's `auth.sessions` through `psql` (skipped without a database).
    pub async fn session_ids(&self, user_id: &str) -> Vec<String> {
        if self.target.emulator_routes {
            let reply = self
                .get(&format!("/_emulator/sessions?user_id={user_id}"), None)
                .await;
            return reply
                .assert_ok()
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
        }
        let Some(db) = &self.target.database else {
            skip("needs the server's session list: give --database");
        };
        let sql = format!(
            "select id from auth.sessions where user_id::text = '{user_id}' order by created_at"
        );
        psql_rows(db, &sql)
    }

    /// The server's time, as seconds since the Unix epoch (the emulator's clock, or this
    /// machine's for a real server on it).
    pub async fn now(&self) -> u64 {
        if self.target.emulator_routes {
            let reply = self.get("/_emulator/time", None).await;
            return reply.assert_ok()["now"]
                .as_u64()
                .unwrap_or_else(|| panic!("a time in {}", reply.text));
        }
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    /// Posts `body` as it is, with this content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: String) -> Reply {
        let resp = self
            .http
            .post(self.url(path))
            .header("apikey", &self.target.anon_key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}"));
        Reply::read(resp).await
    }

    /// The emulator's clock moves on by `secs` (emulator only).
    pub async fn advance(&self, secs: i64) {
        self.require_emulator("the clock");
        self.post("/_emulator/time", json!({ "advance_secs": secs }))
            .await
            .assert_ok();
    }
}

fn psql(db: &str, sql: &str) {
    psql_out(db, &[], sql);
}

/// The rows `sql` selects, one column each.
fn psql_rows(db: &str, sql: &str) -> Vec<String> {
    psql_out(db, &["-A", "-t"], sql)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs `sql` through `psql` with the `extra` flags; fails on any error; its output.
fn psql_out(db: &str, extra: &[&str], sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([db, "-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(extra)
        .args(["-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `jwt` signed again with HS256 under `secret`: the same header and claims, a signature
/// the server did not make.
pub fn forge(jwt: &str, secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let signed = jwt.rsplit_once('.').map(|(s, _)| s).unwrap_or_default();
    // HMAC-SHA256 (RFC 2104).
    let mut key = secret.as_bytes().to_vec();
    if key.len() > 64 {
        key = Sha256::digest(&key).to_vec();
    }
    key.resize(64, 0);
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(signed.as_bytes())
        .finalize();
    let mac = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!(
        "{signed}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    )
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
