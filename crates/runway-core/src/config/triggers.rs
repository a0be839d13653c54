//! `[triggers.NAME]`: work that starts by itself. One table per trigger, exactly one of `watch`
//! (a directory), `cron` (a schedule) or `webhook` (a URL path), and the job `type` it submits.
//! Keys of another kind of trigger are refused, so a typo never passes silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ConfigError, DAY, JobTypeConfig, Origin, check_name, optional_duration};
use crate::watch_filter::WatchFilter;
use crate::watch_state::Changed;

/// A debounce unless the trigger sets one: long enough for an editor's save or a `git pull`
/// to finish, short enough to feel immediate.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrigger {
    #[serde(rename = "type")]
    job_type: Option<String>,
    watch: Option<PathBuf>,
    patterns: Option<Vec<String>>,
    ignore: Option<Vec<String>>,
    debounce: Option<String>,
    cooldown: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
    input: Option<toml::Value>,
    missed: Option<String>,
    webhook: Option<String>,
    secret_env: Option<String>,
    signature: Option<String>,
    input_pointer: Option<String>,
}

/// A trigger, validated: its job type exists and accepts what the trigger submits.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    pub name: String,
    pub job_type: String,
    pub source: TriggerSource,
}

#[derive(Debug, Clone)]
pub enum TriggerSource {
    Watch(WatchTrigger),
    Schedule(ScheduleTrigger),
    Webhook(WebhookTrigger),
}

#[derive(Debug, Clone)]
pub struct WatchTrigger {
    /// An absolute directory, watched recursively.
    pub root: PathBuf,
    pub patterns: Vec<String>,
    pub ignore: Vec<String>,
    pub filter: WatchFilter,
    pub debounce: Duration,
    pub cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct ScheduleTrigger {
    pub cron: Cron,
    /// The expression as written, for display.
    pub expression: String,
    pub timezone: chrono_tz::Tz,
    pub input: Value,
    pub missed: Missed,
}

/// What a schedule does about fires that fell while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// One run for all of them, at start.
    RunOnce,
    /// None; the schedule goes on from now.
    Skip,
}

impl FromStr for Missed {
    type Err = String;

    fn from_str(text: &str) -> Result<Missed, String> {
        match text {
            "run_once" => Ok(Missed::RunOnce),
            "skip" => Ok(Missed::Skip),
            other => Err(format!(
                "`{other}` is not a choice; use \"run_once\" or \"skip\""
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookTrigger {
    /// `POST /hooks/{path}`.
    pub path: String,
    pub secret: Secret,
    /// The environment variable the secret came from, for display.
    pub secret_env: String,
    pub signature: Signature,
    /// The part of the body that becomes the job's input (a JSON pointer); the whole body when
    /// empty.
    pub input_pointer: String,
}

/// How a webhook delivery proves it knows the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// `X-Hub-Signature-256: sha256=HEX`, an HMAC-SHA256 of the body (GitHub, Gitea, Forgejo).
    HmacSha256,
    /// `Authorization: Bearer SECRET`.
    Bearer,
}

impl FromStr for Signature {
    type Err = String;

    fn from_str(text: &str) -> Result<Signature, String> {
        match text {
            "hmac-sha256" => Ok(Signature::HmacSha256),
            "bearer" => Ok(Signature::Bearer),
            other => Err(format!(
                "`{other}` is not a choice; use \"hmac-sha256\" or \"bearer\""
            )),
        }
    }
}

/// A secret that never shows in logs or debug output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The cron dialect of schedules: five fields, or six with seconds first.
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expression)
        .map_err(|error| error.to_string())
}

pub(super) fn validate_triggers(
    origin: &Origin,
    base_dir: &Path,
    env: &HashMap<String, String>,
    raw: BTreeMap<String, RawTrigger>,
    types: &BTreeMap<String, JobTypeConfig>,
) -> Result<BTreeMap<String, TriggerConfig>, ConfigError> {
    let mut triggers = BTreeMap::new();
    let mut hooks: BTreeMap<String, String> = BTreeMap::new();
    for (name, raw) in raw {
        let trigger = validate_trigger(origin, base_dir, env, &name, raw, types)?;
        if let TriggerSource::Webhook(hook) = &trigger.source
            && let Some(other) = hooks.insert(hook.path.clone(), name.clone())
        {
            return Err(origin.error(
                format!("triggers.{name}.webhook"),
                format!(
                    "`{}` is already the webhook of trigger `{other}`; give each its own",
                    hook.path
                ),
            ));
        }
        triggers.insert(name, trigger);
    }
    Ok(triggers)
}

fn validate_trigger(
    origin: &Origin,
    base_dir: &Path,
    env: &HashMap<String, String>,
    name: &str,
    raw: RawTrigger,
    types: &BTreeMap<String, JobTypeConfig>,
) -> Result<TriggerConfig, ConfigError> {
    let table = format!("triggers.{name}");
    let key = |field: &str| format!("{table}.{field}");
    check_name(origin, &table, name)?;
    let kinds = [
        ("watch", raw.watch.is_some()),
        ("cron", raw.cron.is_some()),
        ("webhook", raw.webhook.is_some()),
    ];
    let given: Vec<&str> = kinds
        .iter()
        .filter(|(_, present)| *present)
        .map(|(kind, _)| *kind)
        .collect();
    let kind = match given.as_slice() {
        [kind] => *kind,
        [] => {
            return Err(origin.error(
                &table,
                "says neither what starts it: add watch = \"DIR\", cron = \"0 3 * * *\" or webhook = \"NAME\"",
            ));
        }
        several => {
            return Err(origin.error(
                &table,
                format!("has {}; a trigger has exactly one", several.join(" and ")),
            ));
        }
    };
    let foreign: &[(&str, bool)] = &[
        ("patterns", raw.patterns.is_some()),
        ("ignore", raw.ignore.is_some()),
        ("debounce", raw.debounce.is_some()),
        ("cooldown", raw.cooldown.is_some()),
        ("timezone", raw.timezone.is_some()),
        ("input", raw.input.is_some()),
        ("missed", raw.missed.is_some()),
        ("secret_env", raw.secret_env.is_some()),
        ("signature", raw.signature.is_some()),
        ("input_pointer", raw.input_pointer.is_some()),
    ];
    for (field, present) in foreign {
        let owner = match *field {
            "patterns" | "ignore" | "debounce" | "cooldown" => "watch",
            "timezone" | "input" | "missed" => "cron",
            _ => "webhook",
        };
        if *present && owner != kind {
            return Err(origin.error(
                key(field),
                format!("is a key of {owner} triggers; this trigger is a {kind} trigger"),
            ));
        }
    }
    let Some(job_type_name) = raw.job_type else {
        return Err(origin.error(
            &table,
            "says no job type: add type = \"NAME\" (one of the [types])",
        ));
    };
    let Some(job_type) = types.get(&job_type_name) else {
        return Err(origin.error(
            key("type"),
            format!(
                "names type `{job_type_name}`, which is not declared; declared types: {}",
                types.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let accepts = |input: &Value, field: &str, what: &str| -> Result<(), ConfigError> {
        match &job_type.schema {
            Some(schema) => {
                let violations = schema.violations(input, 3);
                if violations.is_empty() {
                    Ok(())
                } else {
                    Err(origin.error(
                        key(field),
                        format!(
                            "{what} does not match the schema of type `{job_type_name}`: {}",
                            violations
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    ))
                }
            }
            None => Ok(()),
        }
    };
    let source = match kind {
        "watch" => {
            let root = base_dir.join(raw.watch.unwrap_or_default());
            let root = std::path::absolute(&root).unwrap_or(root);
            if !root.is_dir() {
                return Err(origin.error(
                    key("watch"),
                    format!(
                        "{} is not a directory; name an existing directory to watch",
                        root.display()
                    ),
                ));
            }
            let patterns = raw.patterns.unwrap_or_default();
            let ignore = raw.ignore.unwrap_or_default();
            let filter = WatchFilter::new(&patterns, &ignore)
                .map_err(|bad| origin.error(key("patterns"), bad.to_string()))?;
            let debounce = optional_duration(
                origin,
                &key("debounce"),
                raw.debounce.as_deref(),
                DEFAULT_DEBOUNCE,
                Duration::ZERO..=DAY,
            )?;
            let cooldown = optional_duration(
                origin,
                &key("cooldown"),
                raw.cooldown.as_deref(),
                Duration::ZERO,
                Duration::ZERO..=DAY,
            )?;
            // Both inputs a run can have: the paths that changed, or everything.
            let listed = Changed::Paths(BTreeSet::from(["file".to_string()]));
            accepts(
                &listed.input(name),
                "type",
                "a watch trigger's input ({\"trigger\", \"paths\": [...]})",
            )?;
            accepts(
                &Changed::Everything.input(name),
                "type",
                "a watch trigger's full-run input ({\"trigger\", \"paths\": null, \"overflow\": true})",
            )?;
            TriggerSource::Watch(WatchTrigger {
                root,
                patterns,
                ignore,
                filter,
                debounce,
                cooldown,
            })
        }
        "cron" => {
            let expression = raw.cron.unwrap_or_default();
            let cron = parse_cron(&expression).map_err(|error| {
                origin.error(
                    key("cron"),
                    format!(
                        "`{expression}` is not a cron schedule ({error}); write five fields \
                         (minute hour day month weekday), e.g. \"0 3 * * *\", or six with \
                         seconds first"
                    ),
                )
            })?;
            let timezone = match raw.timezone.as_deref() {
                None => chrono_tz::UTC,
                Some(text) => text.parse().map_err(|_| {
                    origin.error(
                        key("timezone"),
                        format!(
                            "`{text}` is not a time zone; use an IANA name such as \
                             \"Europe/Prague\" or \"UTC\""
                        ),
                    )
                })?,
            };
            let input = match raw.input {
                None => json!({}),
                Some(value) => serde_json::to_value(value).map_err(|error| {
                    origin.error(key("input"), format!("cannot be read as JSON: {error}"))
                })?,
            };
            accepts(&input, "input", "the input")?;
            let missed = match raw.missed.as_deref() {
                None => Missed::RunOnce,
                Some(text) => text
                    .parse()
                    .map_err(|message: String| origin.error(key("missed"), message))?,
            };
            TriggerSource::Schedule(ScheduleTrigger {
                cron,
                expression,
                timezone,
                input,
                missed,
            })
        }
        _ => {
            let path = raw.webhook.unwrap_or_default();
            check_name(origin, &key("webhook"), &path)?;
            let Some(secret_env) = raw.secret_env else {
                return Err(origin.error(
                    &table,
                    "has no secret: add secret_env = \"VARIABLE\", the environment variable \
                     holding the webhook's secret",
                ));
            };
            let secret = match env.get(&secret_env) {
                Some(secret) if secret.len() >= 16 => Secret(secret.clone()),
                Some(_) => {
                    return Err(origin.error(
                        key("secret_env"),
                        format!(
                            "environment variable {secret_env} holds fewer than 16 characters; \
                             use a long random secret (e.g. `openssl rand -hex 32`)"
                        ),
                    ));
                }
                None => {
                    return Err(origin.error(
                        key("secret_env"),
                        format!(
                            "environment variable {secret_env} is not set; set it to the \
                             webhook's secret before starting the server"
                        ),
                    ));
                }
            };
            let signature = match raw.signature.as_deref() {
                None => Signature::HmacSha256,
                Some(text) => text
                    .parse()
                    .map_err(|message: String| origin.error(key("signature"), message))?,
            };
            let input_pointer = raw.input_pointer.unwrap_or_default();
            if !input_pointer.is_empty() && !input_pointer.starts_with('/') {
                return Err(origin.error(
                    key("input_pointer"),
                    format!(
                        "`{input_pointer}` is not a JSON pointer; write it like \"/payload\" \
                         (or leave it out for the whole body)"
                    ),
                ));
            }
            TriggerSource::Webhook(WebhookTrigger {
                path,
                secret,
                secret_env,
                signature,
                input_pointer,
            })
        }
    };
    Ok(TriggerConfig {
        name: name.to_string(),
        job_type: job_type_name,
        source,
    })
}

#[cfg(test)]
mod tests;
