use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::config::LiveConfig;

const BASE: &str = r#"
[discovery]
url = "https://platform.example/api/apps?key=s3cr3t-query"
filter = "[.apps[] | .slug as $app | .stages[] | {app: $app, env: .name, region: .region}]"
refresh = "2m"

[discovery.template]
schedule = "0 */5 * * * *"
retention = { keep_last = 20 }

[discovery.template.live]
kind = "http"
url = "https://{region}.platform.example/apps/{app}/envs/{env}/export"
bearer_token_env = "PLATFORM_TOKEN"
headers = { "X-App" = "{app}" }

[discovery.template.filter]
read = "{flows: .flows}"
"#;

const ANSWER: &str = r#"{"apps": [
  {"slug": "crm", "stages": [{"name": "production", "region": "eu"}, {"name": "staging", "region": "us"}]},
  {"slug": "Bad App", "stages": [{"name": "production", "region": "eu"}]},
  {"slug": "hr", "stages": [{"name": "dev", "region": "eu"}, {"name": "../etc", "region": "eu"}]}
]}"#;

fn config(extra: &str) -> Config {
    Config::parse(&format!("{BASE}\n{extra}")).unwrap()
}

fn discover(config: &Config, answer: &str) -> Discovered {
    let d = Discovery::new(config.discovery.as_ref().unwrap()).unwrap();
    d.apply(answer.as_bytes(), config).unwrap()
}

fn names(envs: impl IntoIterator<Item = EnvRef>) -> Vec<String> {
    envs.into_iter().map(|e| e.to_string()).collect()
}

#[test]
fn filter_and_templates_give_each_environment_its_settings() {
    let c = config("");
    assert_eq!(c.discovery.as_ref().unwrap().refresh.as_secs(), 120);
    let found = discover(&c, ANSWER);
    assert_eq!(
        names(found.envs.keys().cloned()),
        ["crm/production", "crm/staging", "hr/dev"]
    );
    let staging = &found.envs[&EnvRef::parse("crm", "staging").unwrap()];
    let Some(LiveConfig::Http {
        url,
        headers,
        bearer_token_env,
        ..
    }) = &staging.live
    else {
        panic!("no http live: {staging:?}");
    };
    assert_eq!(
        url,
        "https://us.platform.example/apps/crm/envs/staging/export"
    );
    assert_eq!(headers["X-App"], "crm");
    assert_eq!(bearer_token_env.as_deref(), Some("PLATFORM_TOKEN"));
    assert_eq!(staging.schedule.as_deref(), Some("0 */5 * * * *"));
    assert_eq!(staging.retention.as_ref().unwrap().keep_last, Some(20));
    // jq braces in the template's filter are not placeholders.
    assert_eq!(
        staging.filter.as_ref().unwrap().read.as_deref(),
        Some("{flows: .flows}")
    );
}

#[test]
fn bad_ids_are_reported_and_skipped_not_fatal() {
    let found = discover(&config(""), ANSWER);
    assert_eq!(found.skipped.len(), 2, "{:?}", found.skipped);
    assert!(
        found.skipped[0].contains("entry 2") && found.skipped[0].contains("\"Bad App\""),
        "{:?}",
        found.skipped
    );
    assert!(
        found.skipped[1].contains("\"../etc\""),
        "{:?}",
        found.skipped
    );
}

#[test]
fn entries_without_ids_duplicates_and_missing_fields_are_skipped() {
    let c = config("");
    let d = Discovery::new(c.discovery.as_ref().unwrap()).unwrap();
    let answer = r#"{"apps": [
      {"slug": "a", "stages": [{"name": "x", "region": "eu"}, {"name": "x", "region": "eu"}]},
      {"slug": "b", "stages": [{"name": "y"}]},
      {"slug": 7, "stages": [{"name": "z", "region": "eu"}]}
    ]}"#;
    let found = d.apply(answer.as_bytes(), &c).unwrap();
    assert_eq!(names(found.envs.keys().cloned()), ["a/x"]);
    let all = found.skipped.join("\n");
    assert!(all.contains("a/x is listed more than once"), "{all}");
    assert!(all.contains("{region}"), "{all}");
    assert!(all.contains("`app` is a number"), "{all}");
}

#[test]
fn configured_environments_win_over_discovered_ones() {
    let c = config(
        "[apps.crm.envs.production]\nschedule = \"0 0 * * * *\"\n\
         [apps.crm.envs.production.live]\nkind = \"file\"\npath = \"/srv/crm.json\"\n",
    );
    let found = discover(&c, ANSWER);
    let prod = EnvRef::parse("crm", "production").unwrap();
    assert!(!found.envs.contains_key(&prod));
    assert_eq!(found.configured, std::slice::from_ref(&prod));
    let all = effective(&c, &found);
    let e = all.env(&prod).unwrap();
    assert!(matches!(e.live, Some(LiveConfig::File { .. })), "{e:?}");
    assert_eq!(e.schedule.as_deref(), Some("0 0 * * * *"));
    assert!(all.env(&EnvRef::parse("crm", "staging").unwrap()).is_some());
    assert_eq!(all.envs().count(), 3);

    let discovered: BTreeSet<EnvRef> = found.envs.keys().cloned().collect();
    let gone = EnvRef::parse("old", "one").unwrap();
    let sources = sources(&all, &discovered, &[gone.clone(), prod.clone()]);
    assert_eq!(sources[&prod], Source::Config);
    assert_eq!(sources[&gone], Source::StoreOnly);
    assert_eq!(
        sources[&EnvRef::parse("hr", "dev").unwrap()],
        Source::Discovery
    );
}

#[test]
fn the_answer_must_be_an_array() {
    let c = Config::parse("[discovery]\nurl = \"/tmp/list.json\"\n").unwrap();
    let d = Discovery::new(c.discovery.as_ref().unwrap()).unwrap();
    let e = d.apply(br#"{"app": "a", "env": "b"}"#, &c).unwrap_err();
    assert!(e.to_string().contains("not an array"), "{e}");
    let e = d.apply(b"not json", &c).unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    let found = d.apply(br#"[{"app": "a", "env": "b"}]"#, &c).unwrap();
    assert_eq!(names(found.envs.keys().cloned()), ["a/b"]);
    assert!(found.envs.values().all(|e| e.live.is_none()));
}

#[test]
fn placeholders() {
    let values: BTreeMap<&str, String> =
        [("app", "crm".to_string()), ("env", "prod".to_string())].into();
    assert_eq!(
        fill_placeholders("/a/{app}/{env}/{ x }/{}/{{app}}", &values).unwrap(),
        "/a/crm/prod/{ x }/{}/{crm}"
    );
    let e = fill_placeholders("/{tenant}", &values).unwrap_err();
    assert!(e.contains("{tenant}") && e.contains("app, env"), "{e}");
}

#[test]
fn bad_discovery_configs_name_the_key() {
    for (text, says) in [
        ("[discovery]\nurl = \"ftp://h/x\"", "discovery.url"),
        (
            "[discovery]\nurl = \"/x\"\nrefresh = \"10ms\"",
            "discovery.refresh",
        ),
        (
            "[discovery]\nurl = \"/x\"\nfilter = \"[.[\"",
            "discovery.filter",
        ),
        (
            "[discovery]\nurl = \"/x\"\nbearer_token_env = \"A\"\nbearer_token_file = \"/b\"",
            "at most one of bearer_token_env",
        ),
        (
            "[discovery]\nurl = \"/x\"\n[discovery.template]\nschedule = \"* * *\"",
            "discovery.template.schedule",
        ),
        ("[discovery]\nurl = \"/x\"\nsurprise = 1", "surprise"),
    ] {
        let e = Config::parse(text).unwrap_err();
        assert!(e.to_string().contains(says), "{text}\n{e}");
    }
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jetvault.toml");
    std::fs::write(
        &path,
        "[discovery]\nurl = \"envs.json\"\nbearer_token_file = \"tok\"\n\
         [discovery.template.live]\nkind = \"file\"\npath = \"live/{app}-{env}.json\"\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    let d = c.discovery.as_ref().unwrap();
    assert_eq!(d.file().unwrap(), dir.path().join("envs.json"));
    assert_eq!(
        d.bearer_token_file.as_ref().unwrap(),
        &dir.path().join("tok")
    );
    let Some(LiveConfig::File { path }) = &d.template.live else {
        panic!("no file live");
    };
    assert_eq!(path, &dir.path().join("live/{app}-{env}.json"));
    // The discovery token file is checked like the other secret files.
    assert!(c.secret_files().contains(&dir.path().join("tok").as_path()));
}

#[tokio::test]
async fn reads_a_file_source() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("envs.json");
    std::fs::write(&list, r#"[{"app": "crm", "env": "production"}]"#).unwrap();
    let c = Config::parse(&format!(
        "[discovery]\nurl = \"file://{}\"\n[discovery.template.live]\nkind = \"file\"\n\
         path = \"/srv/{{app}}/{{env}}.json\"\n",
        list.display()
    ))
    .unwrap();
    let d = Discovery::new(c.discovery.as_ref().unwrap()).unwrap();
    let found = d.run(&c).await.unwrap();
    let e = &found.envs[&EnvRef::parse("crm", "production").unwrap()];
    let Some(LiveConfig::File { path }) = &e.live else {
        panic!("{e:?}");
    };
    assert_eq!(path, std::path::Path::new("/srv/crm/production.json"));
    std::fs::remove_file(&list).unwrap();
    let e = d.run(&c).await.unwrap_err();
    assert!(
        e.to_string().contains("cannot read the discovery file"),
        "{e}"
    );
}

#[test]
fn shipped_examples_parse_and_expand() {
    for (name, text) in [
        (
            "discovery.toml",
            include_str!("../../../../examples/discovery.toml"),
        ),
        (
            "reference.toml",
            include_str!("../../../../examples/reference.toml"),
        ),
    ] {
        let c = Config::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = Discovery::new(c.discovery.as_ref().unwrap()).unwrap();
        let answer = r#"{"apps": [{"slug": "shop", "environments": [{"name": "production", "region": "us"}]}]}"#;
        let found = d.apply(answer.as_bytes(), &c).unwrap();
        assert!(found.skipped.is_empty(), "{name}: {:?}", found.skipped);
        let e = &found.envs[&EnvRef::parse("shop", "production").unwrap()];
        let Some(LiveConfig::Http { url, .. }) = &e.live else {
            panic!("{name}: {e:?}");
        };
        assert!(url.contains("/apps/shop/envs/production/"), "{name}: {url}");
    }
}

/// A one-shot HTTP server answering `status` with `body`; its URL and the request
/// head it received.
async fn answer_once(status: &str, body: &str) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let head = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 8192];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (url, head)
}

#[tokio::test]
async fn http_source_sends_the_token_and_redacts_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-planted-9931\n").unwrap();
    let text = |url: &str| {
        format!(
            "[discovery]\nurl = \"{url}/list?key=query-planted-1234\"\nbearer_token_file = \
             {token:?}\nheaders = {{ \"X-Tenant\" = \"acme\" }}\n"
        )
    };
    let (url, head) = answer_once("200 OK", r#"[{"app": "a", "env": "b"}]"#).await;
    let c = Config::parse(&text(&url)).unwrap();
    let found = Discovery::new(c.discovery.as_ref().unwrap())
        .unwrap()
        .run(&c)
        .await
        .unwrap();
    assert_eq!(names(found.envs.keys().cloned()), ["a/b"]);
    let head = head.await.unwrap().to_lowercase();
    assert!(
        head.contains("authorization: bearer tok-planted-9931"),
        "{head}"
    );
    assert!(head.contains("x-tenant: acme"), "{head}");

    let (url, _head) = answer_once("401 Unauthorized", "no").await;
    let c = Config::parse(&text(&url)).unwrap();
    let e = Discovery::new(c.discovery.as_ref().unwrap())
        .unwrap()
        .run(&c)
        .await
        .unwrap_err();
    let msg = e.report();
    assert!(
        msg.contains("401") && msg.contains("discovery token"),
        "{msg}"
    );
    assert!(
        !msg.contains("query-planted") && !msg.contains("tok-planted"),
        "{msg}"
    );
}
