//! The OpenAPI document as this server serves it: the routes' document, told what this
//! server's configuration allows, so that every request the document allows is one the server
//! takes. A submit names one of the declared types, its input follows that type's schema, and
//! its queue is a declared one; a bulk request names jobs or a filter, not both.

use runway_core::Config;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

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
