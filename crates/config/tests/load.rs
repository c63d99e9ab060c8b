//! End-to-end loading of real-looking configs, asserting what an operator would read.
#![allow(clippy::unwrap_used)] // tests may unwrap (project rule); this covers the helpers too

use std::collections::HashMap;
use std::path::Path;

use gatehouse_config::{ConfigErrors, Dialect, Loaded, McpTransport, load_file, load_str};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn load(src: &str, pairs: &[(&str, &str)]) -> Result<Loaded, ConfigErrors> {
    load_str(src, "config.yaml", &env_of(pairs))
}

const REFERENCE_ENV: &[(&str, &str)] = &[
    ("LITELLM_MASTER_KEY", "sk-litellm-master"),
    ("LITELLM_VIRTUAL_KEY_TEST", "sk-litellm-test-9768"),
    ("ANTHROPIC_API_KEY", "sk-ant-api03-x"),
    (
        "DATABASE_URL",
        "postgresql://litellm_user:pw@postgres:5432/litellm_db",
    ),
];

#[test]
fn operator_reference_config_loads() {
    let loaded = load(&fixture("litellm_reference.yaml"), REFERENCE_ENV).unwrap();
    let c = &loaded.config;

    // Legacy placement is honoured and copied to the canonical place.
    assert_eq!(
        c.general_settings.master_key.as_deref(),
        Some("sk-litellm-master")
    );
    assert_eq!(
        c.general_settings.database_url.as_deref(),
        Some("postgresql://litellm_user:pw@postgres:5432/litellm_db")
    );

    let d = loaded.deployments();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].model_name, "claude-3-haiku-orchestrator");
    assert_eq!(d[0].index, 0);
    assert_eq!(d[0].provider.dialect, Dialect::Anthropic);
    assert_eq!(d[0].upstream_model, "claude-3-haiku-20240307");
    assert_eq!(d[0].params.api_key.as_deref(), Some("sk-ant-api03-x"));
    assert_eq!(d[0].api_base(), Some("https://api.anthropic.com"));
    assert_eq!(d[1].provider.name, "openai");
    assert_eq!(d[1].upstream_model, "gpt-4o");
    assert_eq!(d[1].api_base(), Some("http://mock-openai:8000/v1"));
    // Provider parameters are kept for forwarding, without a warning.
    assert_eq!(
        d[1].params.extra.get("temperature"),
        Some(&serde_json::json!(0.2))
    );

    let db = &c.mcp_servers["db_main"];
    assert_eq!(db.transport_kind(), Some(McpTransport::Sse));
    assert_eq!(db.url.as_deref(), Some("http://mcp-postgres:8080/sse"));
    assert_eq!(
        db.api_keys.as_deref(),
        Some(&["sk-litellm-test-9768".to_string()][..])
    );
    assert_eq!(db.require_approval.as_deref(), Some("never"));
    assert_eq!(
        c.mcp_servers["filesystem"].transport_kind(),
        Some(McpTransport::Stdio)
    );

    assert_eq!(c.virtual_keys[0].api_key, "sk-litellm-test-9768");
    assert_eq!(
        c.virtual_keys[0].key_alias.as_deref(),
        Some("test-virtual-key")
    );

    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "litellm_settings.master_key (line 15): general_settings.master_key is the canonical place; using this value",
            "litellm_settings.database_url (line 16): general_settings.database_url is the canonical place; using this value",
            "litellm_settings.success_callback (line 19): callback 'langfuse' is not supported, ignored; Langfuse ingests OTLP: use callbacks: [otel] with OTEL_EXPORTER_OTLP_ENDPOINT at its /api/public/otel",
        ]
    );
}

#[test]
fn summary_lists_everything_but_secrets() {
    let loaded = load(&fixture("litellm_reference.yaml"), REFERENCE_ENV).unwrap();
    let s = loaded.summary();
    assert!(s.contains("claude-3-haiku-orchestrator -> anthropic/claude-3-haiku-20240307 (https://api.anthropic.com)"), "{s}");
    assert!(
        s.contains("db_main [sse] http://mcp-postgres:8080/sse"),
        "{s}"
    );
    assert!(
        s.contains("filesystem [stdio] npx -y @modelcontextprotocol/server-filesystem /srv/shared"),
        "{s}"
    );
    assert!(
        s.contains(
            "test-virtual-key: models claude-3-haiku-orchestrator, gpt-4o-mock; mcp db_main"
        ),
        "{s}"
    );
    assert!(s.contains("success_callback (line 19)"), "{s}");
    for secret in [
        "sk-litellm-test-9768",
        "sk-litellm-master",
        "sk-ant-api03-x",
        "sk-mock",
        "pw@",
    ] {
        assert!(!s.contains(secret), "summary leaks {secret}: {s}");
    }
}

#[test]
fn missing_variable_names_variable_path_and_line() {
    let err = load(&fixture("litellm_reference.yaml"), &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("config.yaml:6: model_list[0].litellm_params.api_key: environment variable ANTHROPIC_API_KEY is not set"),
        "{text}"
    );
    // Every missing variable is listed, not just the first.
    for (line, var) in [
        (15, "LITELLM_MASTER_KEY"),
        (16, "DATABASE_URL"),
        (30, "LITELLM_VIRTUAL_KEY_TEST"),
        (38, "LITELLM_VIRTUAL_KEY_TEST"),
    ] {
        assert!(
            text.contains(&format!("config.yaml:{line}: ")) && text.contains(var),
            "{line} {var}: {text}"
        );
    }
    assert_eq!(err.errors.len(), 5, "{text}");
}

#[test]
fn broken_config_reports_every_problem_at_once() {
    let err = load_str(&fixture("broken.yaml"), "broken.yaml", &env_of(&[])).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(String::from).collect();
    let expected = [
        r#"broken.yaml:4: model_list[0].litellm_params.model: unknown provider "antropic" (did you mean "anthropic"?)"#,
        "broken.yaml:5: model_list[0].litellm_params.api_key: environment variable ANTHROPIC_API_KEY is not set",
        "broken.yaml:6: model_list[1].model_name: model_name must not be empty",
        r#"broken.yaml:9: model_list[1].litellm_params.timeout: invalid type: string "abc", expected f64"#,
        "broken.yaml:10: model_list[1].litellm_params.weight: weight must be a non-negative number, got -1",
        "broken.yaml:12: mcp_servers.db-main: MCP server name \"db-main\" contains '-', which separates server and tool in tool names; use '_' (\"db_main\")",
        "broken.yaml:12: mcp_servers.db-main: an sse server needs a `url`",
        r#"broken.yaml:15: mcp_servers.files.transport: unknown transport "carrier-pigeon": use stdio, http (streamable_http) or sse"#,
        r#"broken.yaml:18: virtual_keys[0].mcp_servers[0]: no MCP server or alias named "nope""#,
        "broken.yaml:19: virtual_keys[1].api_key: the same api_key is declared by another virtual key",
    ];
    assert_eq!(lines, expected);
    assert!(
        !err.to_string().contains("sk-one"),
        "keys must not be echoed"
    );
}

#[test]
fn type_error_has_path_and_line() {
    let src = "\
model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      timeout: abc
";
    let err = load(src, &[]).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].path, "model_list[0].litellm_params.timeout");
    assert_eq!(err.errors[0].line, Some(5));
}

#[test]
fn env_defaults_and_numbers_from_env() {
    let src = "\
model_list:
  - model_name: local
    litellm_params:
      model: hosted_vllm/llama
      api_base: http://${VLLM_HOST:-127.0.0.1}:${VLLM_PORT:-8001}/v1
      timeout: ${TIMEOUT}
      rpm: os.environ/RPM
      api_version: ${API_VERSION}
router_settings:
  redis_port: \"${REDIS_PORT:-6379}\"
  redis_password: ${REDIS_PASSWORD}
";
    let loaded = load(
        src,
        &[
            ("TIMEOUT", "2.5"),
            ("RPM", "600"),
            ("API_VERSION", "2024-10-21"),
            ("REDIS_PASSWORD", "12345"),
        ],
    )
    .unwrap();
    let p = &loaded.deployments()[0].params;
    assert_eq!(p.api_base.as_deref(), Some("http://127.0.0.1:8001/v1"));
    assert_eq!(p.timeout, Some(2.5));
    assert_eq!(p.rpm, Some(600));
    assert_eq!(p.api_version.as_deref(), Some("2024-10-21"));
    // A quoted number still fills a numeric field; a numeric secret stays text.
    assert_eq!(loaded.config.router_settings.redis_port, Some(6379));
    assert_eq!(
        loaded.config.router_settings.redis_password.as_deref(),
        Some("12345")
    );
}

#[test]
fn unknown_keys_warn_with_line_and_hint() {
    let src = "\
model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      api_bse: http://x
    model_info:
      supports_vision: true
litellm_settings:
  num_retires: 3
  callbacks: [otel, langfuse]
  cache: false
environment_variables:
  FOO: bar
";
    let loaded = load(src, &[]).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            r#"model_list[0].litellm_params.api_bse (line 5): sent to the provider as a request parameter; did you mean "api_base"?"#,
            "model_list[0].model_info.supports_vision (line 7): not supported yet, ignored",
            r#"litellm_settings.num_retires (line 9): unknown key, ignored (did you mean "num_retries"?)"#,
            "litellm_settings.callbacks (line 10): callback 'langfuse' is not supported, ignored; Langfuse ingests OTLP: use callbacks: [otel] with OTEL_EXPORTER_OTLP_ENDPOINT at its /api/public/otel",
            "environment_variables (line 12): not supported yet, ignored",
        ]
    );
}

#[test]
fn master_key_in_both_places() {
    let src = "\
litellm_settings:
  master_key: sk-legacy
general_settings:
  master_key: sk-canonical
";
    let loaded = load(src, &[]).unwrap();
    assert_eq!(
        loaded.config.general_settings.master_key.as_deref(),
        Some("sk-canonical")
    );
    assert_eq!(
        loaded.warnings[0].to_string(),
        "litellm_settings.master_key (line 2): ignored: general_settings.master_key is set and takes precedence"
    );
}

#[test]
fn mcp_rules() {
    let src = "\
mcp_servers:
  remote:
    url: https://tools.example/mcp
    allowed_tools: [a]
    disallowed_tools: [b]
    require_approval: sometimes
  local:
    transport: stdio
  bad_url:
    transport: streamable-http
    url: tools.example/mcp
litellm_settings:
  mcp_aliases:
    remote: local
    tools: missing
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
    model_info:
      mcp_servers: [remote, tools, remot]
";
    let err = load(src, &[]).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            "config.yaml:2: mcp_servers.remote: set allowed_tools or disallowed_tools, not both",
            r#"config.yaml:6: mcp_servers.remote.require_approval: require_approval must be "never" or "always", got "sometimes""#,
            "config.yaml:7: mcp_servers.local: a stdio server needs a `command`",
            r#"config.yaml:11: mcp_servers.bad_url.url: url must be an http:// or https:// URL, got "tools.example/mcp""#,
            r#"config.yaml:14: litellm_settings.mcp_aliases.remote: alias "remote" is also the name of an MCP server"#,
            r#"config.yaml:15: litellm_settings.mcp_aliases.tools: alias points at "missing", which is not a configured MCP server"#,
            r#"config.yaml:21: model_list[0].model_info.mcp_servers[2]: no MCP server or alias named "remot" (did you mean "remote"?)"#,
        ]
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let src = "model_list:\n  - model_name: a\n    litellm_params: {model: \"x\"\n";
    let err = load(src, &[]).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    let text = err.to_string();
    assert!(text.starts_with("config.yaml:"), "{text}");
    assert!(text.contains("YAML syntax error at column"), "{text}");
    assert!(err.errors[0].line.is_some_and(|l| l >= 3), "{text}");
}

#[test]
fn duplicate_keys_are_rejected() {
    let src = "general_settings:\n  master_key: a\n  master_key: b\n";
    let err = load(src, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config.yaml:3: duplicate key \"master_key\" (first defined on line 2)"
    );
}

#[test]
fn load_file_reports_file_name_and_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: antropic/x\n",
    )
    .unwrap();
    let err = load_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:4: model_list[0].litellm_params.model: unknown provider \"antropic\" (did you mean \"anthropic\"?)",
            path.display()
        )
    );
    std::fs::write(&path, "model_list: []\n").unwrap();
    assert_eq!(
        load_file(&path).unwrap().source_dir.as_deref(),
        Some(dir.path())
    );
    let missing = load_file(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(
        missing.to_string().contains("cannot read the config file"),
        "{missing}"
    );
}

/// LiteLLM configs share parameters with YAML anchors and merge keys.
#[test]
fn anchors_aliases_and_merge_keys_load() {
    let src = r#"
x-defaults: &defaults
  api_key: os.environ/OPENAI_API_KEY
  api_base: http://vllm:8000
  timeout: 30
model_list:
  - model_name: small
    litellm_params:
      <<: *defaults
      model: hosted_vllm/small
  - model_name: big
    litellm_params:
      <<: *defaults
      model: hosted_vllm/big
      timeout: 120
"#;
    let loaded = load(src, &[("OPENAI_API_KEY", "sk-x")]).unwrap();
    let ms = &loaded.config.model_list;
    assert_eq!(ms[0].litellm_params.api_key.as_deref(), Some("sk-x"));
    assert_eq!(
        ms[0].litellm_params.api_base.as_deref(),
        Some("http://vllm:8000")
    );
    assert_eq!(ms[0].litellm_params.timeout, Some(30.0));
    assert_eq!(
        ms[1].litellm_params.timeout,
        Some(120.0),
        "own keys win over merged ones"
    );
    assert_eq!(ms[1].litellm_params.model, "hosted_vllm/big");
    // Errors in such a file still name the path.
    let err = load(
        &src.replace("hosted_vllm/big", "antropic/big"),
        &[("OPENAI_API_KEY", "k")],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("model_list[1].litellm_params.model"),
        "{err}"
    );
}

#[test]
fn toolsets_and_mcp_settings() {
    let ok = "\
mcp_servers:
  files: {command: npx}
  time: {command: uvx}
mcp_settings:
  max_sessions_per_key: 8
  stream_idle_seconds: 600
  catalog: lazy
toolsets:
  research:
    description: files and time
    tools:
      - server: files
        tools: [read_file]
      - server: time
";
    let loaded = load(ok, &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(c.mcp_settings.max_sessions_per_key, Some(8));
    assert_eq!(c.mcp_settings.catalog.as_deref(), Some("lazy"));
    let t = &c.toolsets["research"];
    assert_eq!(
        t.tools[0].tools.as_deref(),
        Some(&["read_file".to_owned()][..])
    );
    assert!(t.tools[1].tools.is_none());

    let bad = "\
mcp_servers:
  files: {command: npx}
mcp_settings:
  catalog: sometimes
toolsets:
  my-set:
    tools:
      - server: file
";
    let err = load(bad, &[]).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            r#"config.yaml:4: mcp_settings.catalog: unknown catalog mode "sometimes": use full or lazy"#,
            r#"config.yaml:6: toolsets.my-set: toolset name "my-set" contains '-', which separates server and tool in tool names; use '_' ("my_set")"#,
            r#"config.yaml:8: toolsets.my-set.tools[0].server: "file" is not a configured MCP server (did you mean "files"?)"#,
        ]
    );
}

#[test]
fn cache_settings_are_read_and_what_we_lack_is_warned_by_name() {
    use gatehouse_config::cache::{CacheBackend, CallType, settings};
    let src = "\
litellm_settings:
  cache: true
  cache_params:
    type: redis
    host: 10.0.0.5
    port: 6380
    password: pw
    namespace: team
    ttl: 30
    mode: default_off
    supported_call_types: [acompletion, atranscription, anthropic_messages]
    similarity_threshold: 0.8
    s3_bucket_name: b
    cacheable_tools: [weather/get, docs/*]
    colour: blue
";
    let loaded = load(src, &[]).unwrap();
    let (cache, _) = settings(&loaded.config);
    let cache = cache.unwrap();
    assert_eq!(
        cache.backend,
        CacheBackend::Redis {
            host: Some("10.0.0.5".into()),
            port: Some(6380),
            password: Some("pw".into()),
            url: None
        }
    );
    assert_eq!(cache.namespace.as_deref(), Some("team"));
    assert_eq!(cache.ttl, std::time::Duration::from_secs(30));
    assert!(cache.default_off);
    assert_eq!(
        cache.call_types,
        [CallType::ChatCompletions, CallType::Messages]
    );
    assert!(cache.tool_cacheable("weather", "get"));
    assert!(cache.tool_cacheable("docs", "anything"));
    assert!(!cache.tool_cacheable("weather", "set"));
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "litellm_settings.cache_params.supported_call_types (line 11): call type 'atranscription' is not cached by Gatehouse (chat completions, embeddings, responses and anthropic_messages are)",
            "litellm_settings.cache_params.similarity_threshold (line 12): not supported yet, ignored",
            "litellm_settings.cache_params.s3_bucket_name (line 13): not supported yet, ignored",
            "litellm_settings.cache_params.colour (line 15): unknown cache parameter, ignored",
        ]
    );
}

#[test]
fn an_unsupported_cache_type_turns_the_cache_off_and_says_so() {
    let loaded = load(
        "litellm_settings:\n  cache: true\n  cache_params:\n    type: s3\n",
        &[],
    )
    .unwrap();
    assert!(
        gatehouse_config::cache::settings(&loaded.config)
            .0
            .is_none()
    );
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "litellm_settings.cache_params.type (line 4): cache type 's3' is not supported (local and redis are); the cache is off"
        ]
    );
    // `cache: true` alone is the in-process cache, with nothing to warn about.
    let loaded = load("litellm_settings:\n  cache: true\n", &[]).unwrap();
    assert!(loaded.warnings.is_empty());
    assert!(
        gatehouse_config::cache::settings(&loaded.config)
            .0
            .is_some()
    );
}
