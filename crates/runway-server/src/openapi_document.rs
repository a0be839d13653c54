//! The OpenAPI document as this server serves it: the routes' document, told what this
//! server's configuration allows, so that every request the document allows is one the server
//! takes. A submit names one of the declared types, its input follows that type's schema, and
//! its queue is a declared one; a bulk request names jobs or a filter, not both; a sign-in
//! brings a token or a code.

use runway_api::SubmitBatchIdsResponse;
use runway_core::app::MAX_BULK_JOBS;
use runway_core::{Config, JobStatus};
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::{PartialSchema, ToSchema};

/// A job id as the routes spell it.
const JOB_ID_PATTERN: &str = "^[1-9][0-9]{0,17}$";

pub(crate) fn for_this_server(openapi: OpenApi, config: &Config) -> Value {
    let mut document = serde_json::to_value(openapi).expect("an OpenAPI document is JSON");
    let schemas = &mut document["components"]["schemas"];
    let request = schemas["SubmitJobRequest"].take();
    let queues: Vec<Value> = config
        .queues
        .keys()
        .map(|queue| json!(queue))
        .chain([Value::Null])
        .collect();
    let per_type: Vec<Value> = config
        .types
        .values()
        .map(|job_type| {
            let mut variant = request.clone();
            variant["title"] = json!(job_type.name);
            variant["properties"]["type"] = json!({"type": "string", "const": job_type.name});
            variant["properties"]["queue"] = json!({"enum": queues});
            match job_type.schema.as_ref() {
                Some(schema) => {
                    variant["properties"]["input"] =
                        embeddable(&schema.document).unwrap_or_else(|| json!({}));
                    // Left out, the input is null, which the type's schema judges.
                    variant["required"] = json!(["type", "input"]);
                }
                None => variant["properties"]["input"] = json!({}),
            }
            variant
        })
        .collect();
    schemas["SubmitJobRequest"] = json!({
        "description": request["description"],
        "oneOf": per_type,
    });
    schemas["BulkRequest"]["oneOf"] = json!([
        {"required": ["ids"], "properties": {"ids": {"type": "array", "minItems": 1}, "filter": {"type": "null"}}},
        {"required": ["filter"], "properties": {"filter": {"type": "object"}, "ids": {"type": "null"}}},
    ]);
    schemas["BulkRequest"]["properties"]["ids"]["items"]["pattern"] = json!(JOB_ID_PATTERN);
    schemas["BulkRequest"]["properties"]["ids"]["maxItems"] = json!(MAX_BULK_JOBS);
    let statuses: Vec<&str> = JobStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    schemas["BulkFilter"]["properties"]["status"]["items"] =
        json!({"type": "string", "enum": statuses});
    // A sign-in brings a token or a code, never both.
    schemas["SignInRequest"]["oneOf"] = json!([
        {"required": ["token"], "properties": {"token": {"type": "string"}}},
        {"required": ["code"], "properties": {"code": {"type": "string"}}},
    ]);
    let (name, schema) = (
        SubmitBatchIdsResponse::name(),
        serde_json::to_value(SubmitBatchIdsResponse::schema()).expect("a schema is JSON"),
    );
    schemas[name.as_ref()] = schema;
    // With `return=ids`, a batch answers with the ids alone.
    let created = &mut document["paths"]["/v1/jobs/batch"]["post"]["responses"]["201"]["content"]["application/json"]
        ["schema"];
    *created = json!({"oneOf": [
        created.take(),
        {"$ref": format!("#/components/schemas/{name}")},
    ]});
    document
}

/// A type's input schema as a schema of this document: without the keywords that name a
/// document of its own. One that refers to parts of itself (`$ref`) would resolve them in
/// this document instead, so it is left out (any input), and the server still checks it.
fn embeddable(schema: &Value) -> Option<Value> {
    if schema.to_string().contains("\"$ref\"") {
        return None;
    }
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("$id");
    }
    Some(schema)
}
