//! The OpenAPI 3.1 document at `GET /admin/v1/openapi.json`, generated from
//! the admin endpoint table (so it cannot drift from what is enforced) plus
//! the public endpoints. Each admin operation names its minimum role in
//! `x-required-role`.

use axum::Json;
use serde_json::{Value, json};

use crate::routes::admin::ENDPOINTS;

fn schemas() -> Value {
    json!({
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "description": "stable machine-readable code"},
            "message": {"type": "string"}}},
        "RegisterDevice": {"type": "object", "required": ["id", "hardware_model", "public_key"], "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$"},
            "hardware_model": {"type": "string"},
            "public_key": {"type": "string", "description": "Ed25519 public key: 64 hex digits or SubjectPublicKeyInfo PEM"},
            "site": {"type": "string", "default": "default"},
            "groups": {"type": "array", "items": {"type": "string"}}}},
        "ImportDevices": {"type": "object", "required": ["devices"], "properties": {
            "devices": {"type": "array", "items": {"$ref": "#/components/schemas/RegisterDevice"}}}},
        "Reason": {"type": "object", "properties": {"reason": {"type": "string"}}},
        "CreateRollout": {"type": "object", "required": ["name", "target"], "properties": {
            "name": {"type": "string"},
            "target": {"type": "string", "description": "published firmware target, model/version.nlfw"},
            "from_versions": {"type": "array", "items": {"type": "string"}},
            "groups": {"type": "array", "items": {"type": "string"}},
            "waves": {"type": "array", "items": {"type": "object", "required": ["share"], "properties": {
                "share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "min_soak": {"type": "string", "description": "duration, e.g. 30m or 1d"}}}},
            "failure_threshold": {"type": "object", "required": ["rate", "min_sample"], "properties": {
                "rate": {"type": "number"}, "min_sample": {"type": "integer"}}},
            "start_at": {"type": "string", "format": "date-time"},
            "security_deadline": {"type": "string", "format": "date-time"},
            "start": {"type": "boolean", "default": false}}},
        "SitePolicy": {"type": "object", "properties": {
            "quiet_hours": {"type": "object", "required": ["start", "end"], "properties": {
                "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                "end": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}}},
            "blackout_dates": {"type": "array", "items": {"type": "string", "format": "date"}},
            "time_zone": {"type": "string"}}},
        "CreateToken": {"type": "object", "required": ["name", "role"], "properties": {
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["viewer", "operator", "release", "security-admin"]}}},
        "CreateWebhook": {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "description": "http:// or https://; non-public addresses refused unless webhooks.allow_private_addresses"},
            "events": {"type": "array", "items": {"type": "string"}, "default": ["*"],
                "description": "event types, families (rollout.*) or *; see update-server/README.md, Webhooks"},
            "description": {"type": "string"}}},
        "SetMinimum": {"type": "object", "properties": {
            "min_version": {"type": ["string", "null"], "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"},
            "min_security_counter": {"type": ["integer", "null"], "minimum": 0}}},
        "RotateSecret": {"type": "object", "properties": {
            "overlap": {"type": "string", "default": "24h", "description": "how long the previous secret keeps signing"}}},
        "SetClock": {"type": "object", "properties": {
            "time": {"type": "string", "format": "date-time"}, "advance_secs": {"type": "integer"}}},
        "Metadata": {"type": "object", "description": "TUF metadata {signatures, signed}"},
        "Binary": {"type": "string", "format": "binary"},
        "CheckinRequest": {"type": "object", "required": ["device_id", "counter", "nonce", "report"],
            "description": "see update-server/README.md, Check-in wire format"},
        "CheckinResponse": {"type": "object", "required": ["director_root_version", "director_targets_version", "director_targets_sha256", "time"]}
    })
}

fn error_responses() -> Value {
    let e = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "400": {"description": "malformed request", "content": e["content"]},
        "401": {"description": "missing or bad token", "content": e["content"]},
        "403": {"description": "role too low", "content": e["content"]},
        "404": {"description": "not found", "content": e["content"]},
        "409": {"description": "conflict with the current state", "content": e["content"]},
        "422": {"description": "well-formed but not acceptable", "content": e["content"]}
    })
}

fn public_paths() -> Value {
    let get = |summary: &str, ct: &str| json!({"get": {"summary": summary, "security": [], "responses": {"200": {"description": "OK", "content": {ct: {}}}}}});
    json!({
        "/healthz": get("Liveness", "application/json"),
        "/readyz": get("Readiness: database, blob store and repository", "application/json"),
        "/metrics": get("Prometheus metrics", "text/plain"),
        "/repo/metadata/{file}": get("Image repository metadata (TUF)", "application/json"),
        "/repo/targets/{path}": get("Image repository target files (Range supported)", "application/octet-stream"),
        "/director/metadata/{file}": get("Director roots", "application/json"),
        "/v1/devices/{id}/check-in": {"post": {
            "summary": "A lock's signed check-in (header Nightlatch-Signature: ed25519=<base64url>)",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckinRequest"}}}},
            "responses": {"200": {"description": "director targets and signed time", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckinResponse"}}}},
                "401": {"description": "missing or bad signature"}, "403": {"description": "revoked"},
                "404": {"description": "unknown lock"}, "409": {"description": "replayed or stale counter"},
                "413": {"description": "body too large"}}}}
    })
}

/// Query parameters of admin endpoints: (method, path) → (name, JSON
/// schema type, format, description).
fn query_params(
    method: &str,
    path: &str,
) -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
    const PAGE: (&str, &str, &str, &str) = ("limit", "integer", "", "page size");
    const TIME: &str = "date-time";
    match (method, path) {
        ("GET", "/admin/v1/devices") => &[
            ("prefix", "string", "", "lock id prefix"),
            ("model", "string", "", "hardware model"),
            ("site", "string", "", "site"),
            ("group", "string", "", "group / tag"),
            ("version", "string", "", "firmware version last reported"),
            ("status", "string", "", "active or revoked"),
            ("seen_after", "string", TIME, "last check-in at or after"),
            ("seen_before", "string", TIME, "last check-in before"),
            ("after", "string", "", "next_after of the previous page"),
            PAGE,
        ],
        ("GET", "/admin/v1/devices/{id}/history") => &[
            ("before", "string", "", "event id: older events only"),
            PAGE,
        ],
        ("GET", "/admin/v1/rollouts") => &[PAGE],
        ("GET", "/admin/v1/fleet/versions") | ("GET", "/admin/v1/releases") => {
            &[("model", "string", "", "hardware model")]
        }
        ("GET", "/admin/v1/fleet/below-minimum") => &[
            ("model", "string", "", "hardware model"),
            ("min_version", "string", "", "MAJOR.MINOR.PATCH"),
            ("min_security_counter", "integer", "", "security counter"),
            PAGE,
        ],
        ("GET", "/admin/v1/fleet/stale") => {
            &[("days", "number", "", "not seen for this many days"), PAGE]
        }
        ("GET", "/admin/v1/repo/health") => &[(
            "warning_days",
            "integer",
            "",
            "warn when an offline role expires within this many days (default 7)",
        )],
        ("GET", "/admin/v1/audit") | ("GET", "/admin/v1/audit/export") => &[
            ("actor", "string", "", "token name (system: the server)"),
            ("token_id", "string", "", "token id"),
            (
                "action",
                "string",
                "",
                "action, or a prefix ending in * (rollout.*)",
            ),
            ("since", "string", TIME, "at or after"),
            ("until", "string", TIME, "before"),
            ("after", "string", "", "entry id: later entries only"),
            PAGE,
        ],
        _ => &[],
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = public_paths();
    for e in ENDPOINTS {
        let path = e.path.replace("{*path}", "{path}");
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        for (name, ty, format, what) in query_params(e.method, e.path) {
            let mut schema = json!({"type": ty});
            if !format.is_empty() {
                schema["format"] = json!(format);
            }
            params.push(json!({"name": name, "in": "query", "required": false, "description": what, "schema": schema}));
        }
        let mut op = json!({
            "summary": e.summary,
            "operationId": format!("{}_{}", e.method.to_lowercase(), path.trim_start_matches("/admin/v1/").replace(['/', '{', '}', '-'], "_")),
            "x-required-role": e.role.as_str(),
            "security": [{"bearer": []}],
            "parameters": params,
            "responses": error_responses(),
        });
        op["responses"]["200"] = if e.path == "/admin/v1/audit/export" {
            json!({"description": "CSV, header row id,at,token_id,actor,role,action,subject,detail",
                   "content": {"text/csv": {"schema": {"type": "string"}}}})
        } else {
            json!({"description": "OK", "content": {"application/json": {}}})
        };
        if !e.changes_state() && e.method != "GET" {
            op["x-changes-state"] = json!(false);
        }
        if let Some(body) = e.body {
            let ct = if body == "Binary" {
                "application/octet-stream"
            } else {
                "application/json"
            };
            op["requestBody"] = json!({"required": !matches!(body, "Reason" | "RotateSecret"), "content": {ct: {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        paths[path.as_str()][e.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "nightlatch-server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Nightlatch update server: TUF image repository, Uptane-style director, rollouts, device registry and admin API. Admin roles: viewer < operator < release < security-admin."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas()
        }
    })
}

/// `GET /admin/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}
