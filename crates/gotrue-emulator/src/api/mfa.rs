//! TOTP multi-factor authentication: `POST /factors` (enroll), `POST /factors/{id}/challenge`,
//! `POST /factors/{id}/verify` (→ an `aal2` session) and `DELETE /factors/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use totp_rs::{Algorithm, TOTP};

use super::{AppState, AuthUser, Body, Client, session_json};
use crate::db::{ChallengeRow, FactorRow, RefreshTokenRow, SessionRow, UserRow};
use crate::error::ApiError;
use crate::models::Amr;

const MAX_FACTORS: usize = 10;

fn no_anonymous(auth: &AuthUser) -> Result<(), ApiError> {
    if auth.user.is_anonymous {
        return Err(ApiError::forbidden(
            "no_authorization",
            "Anonymous users cannot use MFA",
        ));
    }
    Ok(())
}

fn totp_for(secret_b32: &str, issuer: &str, account: &str) -> Result<TOTP, ApiError> {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .map_err(|_| ApiError::internal())?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret,
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )
    .map_err(|_| ApiError::internal())
}

fn issuer(state: &AppState) -> String {
    url::Url::parse(&state.config.site_url)
        .ok()
        // GoTrue uses the site URL's host; the port is left out because the otpauth
        // issuer cannot carry a ':'.
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[derive(Debug, Deserialize)]
pub struct EnrollParams {
    factor_type: Option<String>,
    friendly_name: Option<String>,
    issuer: Option<String>,
}

/// GoTrue's `MFA.FactorExpiryDuration` default: an unverified factor lives 300 s.
const FACTOR_EXPIRY_MICROS: i64 = 300_000_000;

pub async fn enroll(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(params): Body<EnrollParams>,
) -> Result<Json<Value>, ApiError> {
    no_anonymous(&auth)?;
    match params.factor_type.as_deref() {
        Some("totp") => {}
        Some("phone") => {
            return Err(ApiError::unprocessable(
                "mfa_phone_enroll_not_enabled",
                "MFA enroll is disabled for Phone",
            ));
        }
        Some("webauthn") => {
            return Err(ApiError::unprocessable(
                "mfa_webauthn_enroll_not_enabled",
                "MFA enroll is disabled for WebAuthn",
            ));
        }
        _ => {
            return Err(ApiError::validation(
                "factor_type needs to be totp, phone, or webauthn",
            ));
        }
    }
    let conn = state.db.lock();
    // GoTrue's `validateFactors`: unverified factors older than the factor expiry (300 s)
    // are dropped first; then a name in use (the empty name too) is refused, then too many
    // factors, then a verified factor without aal2.
    let now = state.now();
    for stale in FactorRow::for_user(&conn, &auth.user.id)?
        .into_iter()
        .filter(|f| {
            f.status != "verified" && now > f.created_at.saturating_add(FACTOR_EXPIRY_MICROS)
        })
    {
        FactorRow::delete(&conn, &stale.id)?;
    }
    let factors = FactorRow::for_user(&conn, &auth.user.id)?;
    let friendly_name = params.friendly_name.unwrap_or_default();
    if factors
        .iter()
        .any(|f| f.friendly_name.as_deref().unwrap_or_default() == friendly_name)
    {
        return Err(ApiError::unprocessable(
            "mfa_factor_name_conflict",
            format!(
                "A factor with the friendly name \"{friendly_name}\" for this user already exists"
            ),
        ));
    }
    if factors.len() >= MAX_FACTORS {
        return Err(ApiError::unprocessable(
            "too_many_enrolled_mfa_factors",
            "Maximum number of verified factors reached, unenroll to continue",
        ));
    }
    let aal2 = auth.session.as_ref().is_some_and(|s| s.aal == "aal2");
    if factors.iter().any(|f| f.status == "verified") && !aal2 {
        return Err(ApiError::forbidden(
            "insufficient_aal",
            "AAL2 required to enroll a new factor",
        ));
    }
    let friendly_name = Some(friendly_name).filter(|n| !n.is_empty());
    let mut secret = [0u8; 20];
    rand::Rng::fill(&mut rand::rng(), &mut secret);
    let secret = data_encoding::BASE32_NOPAD.encode(&secret);
    let issuer = params
        .issuer
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| issuer(&state));
    let account = auth
        .user
        .email
        .clone()
        .unwrap_or_else(|| auth.user.id.clone());
    let uri = totp_for(&secret, &issuer, &account)?.get_url();
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|_| ApiError::internal())?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let now = state.now();
    let factor = FactorRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: auth.user.id.clone(),
        friendly_name: friendly_name.clone(),
        factor_type: "totp".into(),
        status: "unverified".into(),
        secret: secret.clone(),
        created_at: now,
        updated_at: now,
    };
    factor.save(&conn)?;
    Ok(Json(json!({
        "id": factor.id,
        "type": "totp",
        "friendly_name": friendly_name.unwrap_or_default(),
        "totp": { "qr_code": qr, "secret": secret, "uri": uri },
    })))
}

fn find_factor(
    conn: &rusqlite::Connection,
    user: &UserRow,
    id: &str,
) -> Result<FactorRow, ApiError> {
    FactorRow::for_user(conn, &user.id)?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::not_found("mfa_factor_not_found", "Factor not found"))
}

pub async fn challenge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AuthUser,
    client: Client,
) -> Result<Json<Value>, ApiError> {
    no_anonymous(&auth)?;
    let conn = state.db.lock();
    let factor = find_factor(&conn, &auth.user, &id)?;
    let now = state.now();
    let challenge = ChallengeRow {
        id: uuid::Uuid::new_v4().to_string(),
        factor_id: factor.id.clone(),
        ip_address: client.ip,
        created_at: now,
        verified_at: None,
    };
    challenge.insert(&conn)?;
    let expires_at = state.clock.now_secs() + state.config.mfa_challenge_expiry.as_secs() as i64;
    Ok(Json(
        json!({ "id": challenge.id, "type": factor.factor_type, "expires_at": expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct VerifyParams {
    challenge_id: Option<String>,
    code: Option<String>,
}

pub async fn verify(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AuthUser,
    client: Client,
    Body(params): Body<VerifyParams>,
) -> Result<Json<Value>, ApiError> {
    no_anonymous(&auth)?;
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let mut factor = find_factor(&tx, &auth.user, &id)
        .map_err(|_| ApiError::unprocessable("mfa_factor_not_found", "Factor not found"))?;
    let challenge_id = params.challenge_id.unwrap_or_default();
    let challenge = ChallengeRow::find(&tx, &challenge_id)?
        .filter(|c| c.factor_id == factor.id)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "mfa_factor_not_found",
                "MFA factor with the provided challenge ID not found",
            )
        })?;
    if challenge.verified_at.is_some() || challenge.ip_address != client.ip {
        return Err(ApiError::unprocessable(
            "mfa_ip_address_mismatch",
            "Challenge and verify IP addresses mismatch.",
        ));
    }
    let now = state.now();
    let expiry = i64::try_from(state.config.mfa_challenge_expiry.as_micros()).unwrap_or(i64::MAX);
    if now > challenge.created_at.saturating_add(expiry) {
        return Err(ApiError::unprocessable(
            "mfa_challenge_expired",
            format!(
                "MFA challenge {} has expired, verify against another challenge or create a new challenge.",
                challenge.id
            ),
        ));
    }
    let account = auth
        .user
        .email
        .clone()
        .unwrap_or_else(|| auth.user.id.clone());
    let totp = totp_for(&factor.secret, &issuer(&state), &account)?;
    let code = params.code.unwrap_or_default();
    let at = u64::try_from(state.clock.now_secs()).unwrap_or_default();
    if !totp.check(code.trim(), at) {
        return Err(ApiError::unprocessable(
            "mfa_verification_failed",
            "Invalid TOTP code entered",
        ));
    }
    ChallengeRow::mark_verified(&tx, &challenge.id, now)?;
    let mut session = auth.session.clone().ok_or_else(|| {
        ApiError::forbidden(
            "session_not_found",
            "Session from session_id claim in JWT does not exist",
        )
    })?;
    if factor.status != "verified" {
        factor.status = "verified".into();
        factor.updated_at = now;
        factor.save(&tx)?;
        // Other unverified TOTP factors of the user are dropped.
        for other in FactorRow::for_user(&tx, &auth.user.id)? {
            if other.id != factor.id && other.status == "unverified" && other.factor_type == "totp"
            {
                FactorRow::delete(&tx, &other.id)?;
            }
        }
    }
    session.aal = "aal2".into();
    session.factor_id = Some(factor.id.clone());
    // The claims are kept oldest first (an updated claim moves to the end); the token
    // orders them newest first.
    session.amr.retain(|a| a.method != "totp");
    session.amr.push(Amr {
        method: "totp".into(),
        timestamp: state.clock.now_secs(),
        provider: None,
    });
    session.updated_at = now;
    session.save(&tx)?;
    // Every aal1 session of the user ends; this session gets a new refresh token.
    SessionRow::delete_aal1_except(&tx, &auth.user.id, &session.id)?;
    RefreshTokenRow::revoke_family(&tx, &session.id, now)?;
    let refresh = RefreshTokenRow::create(&tx, &auth.user.id, &session.id, None, now)?;
    let user = UserRow::find(&tx, &auth.user.id)?.unwrap_or(auth.user);
    let body = session_json(&state, &tx, &user, &session, &refresh.token, Map::new())?;
    tx.commit()?;
    Ok(Json(body))
}

pub async fn unenroll(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AuthUser,
) -> Result<Json<Value>, ApiError> {
    no_anonymous(&auth)?;
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let factor = find_factor(&tx, &auth.user, &id)?;
    let aal2 = auth.session.as_ref().is_some_and(|s| s.aal == "aal2");
    if factor.status == "verified" && !aal2 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_aal",
            "AAL2 required to unenroll verified factor",
        ));
    }
    FactorRow::delete(&tx, &factor.id)?;
    // Sessions bound to the factor fall back to aal1.
    let now = state.now();
    for mut session in SessionRow::for_user(&tx, &auth.user.id)? {
        if session.factor_id.as_deref() == Some(factor.id.as_str()) {
            session.factor_id = None;
            session.aal = "aal1".into();
            session.amr.retain(|a| a.method != "totp");
            session.updated_at = now;
            session.save(&tx)?;
        }
    }
    tx.commit()?;
    Ok(Json(json!({ "id": factor.id })))
}
