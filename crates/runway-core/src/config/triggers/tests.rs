use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::config::{Config, ConfigError, Missed, Signature, TriggerSource};

const TYPE: &str = "[types.rebuild]\ncommand = [\"true\"]\n";

fn load(text: &str) -> Result<Config, ConfigError> {
    let env = HashMap::from([
        (
            "HOOK_SECRET".to_string(),
            "0123456789abcdef-secret".to_string(),
        ),
        ("SHORT_SECRET".to_string(), "short".to_string()),
    ]);
    Config::from_toml(&format!("{TYPE}{text}"), &env)
}

fn error(text: &str) -> ConfigError {
    load(text).expect_err("the config must be refused")
}

#[test]
fn a_watch_trigger_is_read_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(&format!(
        "[triggers.notes]\nwatch = {:?}\npatterns = [\"*.org\"]\ntype = \"rebuild\"\n",
        dir.path()
    ))
    .unwrap();
    let trigger = &config.triggers["notes"];
    assert_eq!(trigger.job_type, "rebuild");
    let TriggerSource::Watch(watch) = &trigger.source else {
        panic!("a watch trigger: {trigger:?}");
    };
    assert_eq!(watch.root, dir.path());
    assert_eq!(watch.patterns, ["*.org"]);
    assert_eq!(watch.debounce, Duration::from_secs(1));
    assert_eq!(watch.cooldown, Duration::ZERO);
}

#[test]
fn a_schedule_is_read_with_its_zone_input_and_missed_policy() {
    let config = load(
        "[triggers.nightly]\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Prague\"\n\
         type = \"rebuild\"\ninput = { target = \"/srv\" }\nmissed = \"skip\"\n",
    )
    .unwrap();
    let TriggerSource::Schedule(schedule) = &config.triggers["nightly"].source else {
        panic!("a schedule");
    };
    assert_eq!(schedule.expression, "0 3 * * *");
    assert_eq!(schedule.timezone, chrono_tz::Europe::Prague);
    assert_eq!(schedule.input, json!({"target": "/srv"}));
    assert_eq!(schedule.missed, Missed::Skip);
}

#[test]
fn a_webhook_reads_its_secret_from_the_environment() {
    let config = load(
        "[triggers.deploy]\nwebhook = \"deploy\"\nsecret_env = \"HOOK_SECRET\"\n\
         signature = \"bearer\"\ninput_pointer = \"/payload\"\ntype = \"rebuild\"\n",
    )
    .unwrap();
    let TriggerSource::Webhook(hook) = &config.triggers["deploy"].source else {
        panic!("a webhook");
    };
    assert_eq!(hook.secret.expose(), "0123456789abcdef-secret");
    assert_eq!(hook.signature, Signature::Bearer);
    assert_eq!(hook.input_pointer, "/payload");
    assert!(!format!("{hook:?}").contains("0123456789abcdef"));
}

#[test]
fn a_trigger_needs_exactly_one_source() {
    let none = error("[triggers.t]\ntype = \"rebuild\"\n");
    assert_eq!(none.key, "triggers.t");
    assert!(none.message.contains("neither"), "{none}");
    let two = error("[triggers.t]\ncron = \"* * * * *\"\nwebhook = \"t\"\ntype = \"rebuild\"\n");
    assert!(two.message.contains("cron and webhook"), "{two}");
}

#[test]
fn a_key_of_another_kind_of_trigger_is_refused() {
    let refused =
        error("[triggers.t]\ncron = \"* * * * *\"\npatterns = [\"*\"]\ntype = \"rebuild\"\n");
    assert_eq!(refused.key, "triggers.t.patterns");
    assert!(refused.message.contains("watch triggers"), "{refused}");
}

#[test]
fn an_unknown_type_is_named_with_the_declared_ones() {
    let refused = error("[triggers.t]\ncron = \"* * * * *\"\ntype = \"nope\"\n");
    assert_eq!(refused.key, "triggers.t.type");
    assert!(refused.message.contains("rebuild"), "{refused}");
}

#[test]
fn a_bad_cron_or_zone_names_its_key() {
    let cron = error("[triggers.t]\ncron = \"61 * * * *\"\ntype = \"rebuild\"\n");
    assert_eq!(cron.key, "triggers.t.cron");
    let zone = error(
        "[triggers.t]\ncron = \"* * * * *\"\ntimezone = \"Mars/Olympus\"\ntype = \"rebuild\"\n",
    );
    assert_eq!(zone.key, "triggers.t.timezone");
    assert!(zone.message.contains("IANA"), "{zone}");
}

#[test]
fn a_missing_watched_directory_is_refused() {
    let refused = error("[triggers.t]\nwatch = \"/no/such/dir\"\ntype = \"rebuild\"\n");
    assert_eq!(refused.key, "triggers.t.watch");
    assert!(refused.message.contains("not a directory"), "{refused}");
}

#[test]
fn a_webhook_secret_must_be_set_and_long() {
    let unset =
        error("[triggers.t]\nwebhook = \"t\"\nsecret_env = \"NOT_SET\"\ntype = \"rebuild\"\n");
    assert_eq!(unset.key, "triggers.t.secret_env");
    assert!(unset.message.contains("NOT_SET is not set"), "{unset}");
    let short =
        error("[triggers.t]\nwebhook = \"t\"\nsecret_env = \"SHORT_SECRET\"\ntype = \"rebuild\"\n");
    assert!(short.message.contains("fewer than 16"), "{short}");
    let missing = error("[triggers.t]\nwebhook = \"t\"\ntype = \"rebuild\"\n");
    assert!(missing.message.contains("secret_env"), "{missing}");
}

#[test]
fn two_webhooks_cannot_share_a_path() {
    let refused = error(
        "[triggers.a]\nwebhook = \"hook\"\nsecret_env = \"HOOK_SECRET\"\ntype = \"rebuild\"\n\
         [triggers.b]\nwebhook = \"hook\"\nsecret_env = \"HOOK_SECRET\"\ntype = \"rebuild\"\n",
    );
    assert_eq!(refused.key, "triggers.b.webhook");
}

#[test]
fn a_schedules_input_is_checked_by_its_types_schema() {
    let text = "[types.backup]\ncommand = [\"true\"]\n\
                schema = { type = \"object\", required = [\"target\"] }\n\
                [triggers.nightly]\ncron = \"0 3 * * *\"\ntype = \"backup\"\ninput = { other = 1 }\n";
    let refused = Config::from_toml(text, &HashMap::new()).expect_err("refused");
    assert_eq!(refused.key, "triggers.nightly.input");
    assert!(refused.message.contains("target"), "{refused}");
}

#[test]
fn a_watch_triggers_type_must_take_both_of_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[types.rebuild]\ncommand = [\"true\"]\n\
         schema = {{ type = \"object\", properties = {{ paths = {{ type = \"array\" }} }} }}\n\
         [triggers.notes]\nwatch = {:?}\ntype = \"rebuild\"\n",
        dir.path()
    );
    let refused = Config::from_toml(&text, &HashMap::new()).expect_err("refused");
    assert_eq!(refused.key, "triggers.notes.type");
    assert!(refused.message.contains("full-run input"), "{refused}");
}
