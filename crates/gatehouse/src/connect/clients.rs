//! One renderer per client. Each prints what to put where, with the file contents in
//! fenced blocks (```toml, ```json, ```sh, ```bat, ```python, ```js) so a person can copy
//! them and a test can run them as printed.

use serde_json::json;

use super::{Client, Target, lan};

pub fn render(client: Client, t: &Target) -> String {
    let body = match client {
        Client::Codex => codex(t),
        Client::ClaudeCode => claude_code(t),
        Client::Vscode => vscode(t),
        Client::Cursor => cursor(t),
        Client::OpenWebui => open_webui(t),
        Client::OpenaiSdk => openai_sdk(t),
        Client::AnthropicSdk => anthropic_sdk(t),
    };
    // Codex's usual place is a Windows laptop on the LAN; other clients get the notes
    // when the URL is not this machine.
    let lan = if client == Client::Codex || !t.is_loopback() {
        lan::notes(t)
    } else {
        String::new()
    };
    format!("{body}{lan}")
}

fn block(lang: &str, text: &str) -> String {
    format!("```{lang}\n{}\n```\n\n", text.trim_end())
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => vec![],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

fn json_pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// How to put the key in the environment, both ways.
fn key_env_steps(t: &Target) -> String {
    let k = &t.key_env;
    format!(
        "The key (the master key or a virtual key, sk-...) lives in the environment variable {k}:\n\n{}{}",
        block(
            "sh",
            &format!("# Linux/macOS: add to ~/.bashrc, ~/.zshrc or ~/.profile\nexport {k}=sk-...")
        ),
        block(
            "bat",
            &format!(
                "REM Windows: stored for new terminals (open a new one afterwards)\nsetx {k} sk-...\nREM this PowerShell session only:  $env:{k} = \"sk-...\""
            )
        ),
    )
}

fn mcp_headers(t: &Target, authorization: String) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    headers.insert("Authorization".into(), json!(authorization));
    if let Some(s) = t.servers_header() {
        headers.insert("x-mcp-servers".into(), json!(s));
    }
    serde_json::Value::Object(headers)
}

fn servers_sentence(t: &Target) -> String {
    match t.servers_header() {
        Some(s) => format!("The MCP endpoint is narrowed to {s} (x-mcp-servers header)."),
        None => {
            "The MCP endpoint serves every MCP server the key may use (narrow it with --servers)."
                .into()
        }
    }
}

fn codex(t: &Target) -> String {
    let mut mcp = format!(
        "[mcp_servers.gatehouse]\nurl = {}\nbearer_token_env_var = {}\n",
        toml_str(&t.mcp_url()),
        toml_str(&t.key_env)
    );
    if let Some(s) = t.servers_header() {
        mcp.push_str(&format!(
            "http_headers = {{ \"x-mcp-servers\" = {} }}\n",
            toml_str(&s)
        ));
    }
    let config = format!(
        "model = {model}\nmodel_provider = \"gatehouse\"\n\n[model_providers.gatehouse]\nname = \"Gatehouse\"\nbase_url = {base}\nenv_key = {key}\nwire_api = \"responses\"\n\n{mcp}",
        model = toml_str(&t.model),
        base = toml_str(&format!("{}/v1", t.url)),
        key = toml_str(&t.key_env),
    );
    format!(
        "# Codex CLI -> Gatehouse at {url}\n\n\
         Codex speaks the Responses API only (wire_api = \"responses\"); Gatehouse serves it for every model.\n\
         {servers}\n\n\
         ## config.toml\n\n\
         Linux/macOS: ~/.codex/config.toml    Windows: %USERPROFILE%\\.codex\\config.toml\n\
         (or any directory named by CODEX_HOME)\n\n{config}\
         For non-interactive `codex exec`, also set approval_policy = \"never\" at the top.\n\
         Gatehouse's tools appear in Codex under mcp__gatehouse, named <server>_<tool>.\n\n\
         ## Key\n\n{keys}\
         Then run `codex` (or `codex exec \"<task>\"`).\n\n",
        url = t.url,
        servers = servers_sentence(t),
        config = block("toml", &config),
        keys = key_env_steps(t),
    )
}

fn claude_code(t: &Target) -> String {
    let k = &t.key_env;
    let m = &t.model;
    let sh = format!(
        "export ANTHROPIC_BASE_URL={url}\n\
         export ANTHROPIC_AUTH_TOKEN=\"${k}\"\n\
         export ANTHROPIC_MODEL={m}\n\
         export ANTHROPIC_DEFAULT_HAIKU_MODEL={m}\n\
         export ANTHROPIC_DEFAULT_SONNET_MODEL={m}\n\
         export ANTHROPIC_DEFAULT_OPUS_MODEL={m}\n\
         export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
        url = t.url
    );
    let bat = format!(
        "setx ANTHROPIC_BASE_URL {url}\n\
         setx ANTHROPIC_AUTH_TOKEN %{k}%\n\
         setx ANTHROPIC_MODEL {m}\n\
         setx ANTHROPIC_DEFAULT_HAIKU_MODEL {m}\n\
         setx ANTHROPIC_DEFAULT_SONNET_MODEL {m}\n\
         setx ANTHROPIC_DEFAULT_OPUS_MODEL {m}\n\
         setx CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC 1",
        url = t.url
    );
    let mcp_json = json!({"mcpServers": {"gatehouse": {
        "type": "http",
        "url": t.mcp_url(),
        "headers": mcp_headers(t, format!("Bearer ${{{k}}}")),
    }}});
    let mut add = format!(
        "claude mcp add --transport http gatehouse {} --header \"Authorization: Bearer ${k}\"",
        t.mcp_url()
    );
    if let Some(s) = t.servers_header() {
        add.push_str(&format!(" --header \"x-mcp-servers: {s}\""));
    }
    format!(
        "# Claude Code -> Gatehouse at {url}\n\n\
         Claude Code speaks Anthropic Messages; the base URL has no /v1. The key is sent as\n\
         Authorization: Bearer. Every model name below must be a model_name of Gatehouse.\n\n\
         ## Environment\n\n\
         Linux/macOS (~/.bashrc, ~/.zshrc, or before `claude`):\n\n{sh}\
         Windows (cmd; new terminals see them):\n\n{bat}\
         ## MCP tools\n\n\
         {servers} The header reads the key from ${k} when Claude Code starts.\n\
         Put this in .mcp.json at the project root (or pass the file with --mcp-config FILE):\n\n{mcp}\
         or register it once for your user (this stores the key's value in ~/.claude.json;\n\
         Windows PowerShell: use $env:{k}):\n\n{add}\
         Tools appear as mcp__gatehouse__<server>-<tool>; `claude -p` needs\n\
         --allowedTools mcp__gatehouse to run them without asking.\n\n\
         ## Key\n\n{keys}",
        url = t.url,
        sh = block("sh", &sh),
        bat = block("bat", &bat),
        servers = servers_sentence(t),
        mcp = block("json", &json_pretty(&mcp_json)),
        add = block("sh", &add),
        keys = key_env_steps(t),
    )
}

fn vscode(t: &Target) -> String {
    let config = json!({
        "servers": {"gatehouse": {
            "type": "http",
            "url": t.mcp_url(),
            "headers": mcp_headers(t, "Bearer ${input:gatehouse-key}".into()),
        }},
        "inputs": [{
            "type": "promptString",
            "id": "gatehouse-key",
            "description": "Gatehouse key",
            "password": true,
        }],
    });
    format!(
        "# VS Code (MCP) -> Gatehouse at {url}\n\n\
         {servers} VS Code asks for the key once and keeps it in its secret storage.\n\n\
         ## mcp.json\n\n\
         Workspace: .vscode/mcp.json. User-wide: ~/.config/Code/User/mcp.json (Linux),\n\
         ~/Library/Application Support/Code/User/mcp.json (macOS),\n\
         %APPDATA%\\Code\\User\\mcp.json (Windows).\n\n{config}\
         Then Command Palette -> \"MCP: List Servers\" -> gatehouse -> Start.\n\n",
        url = t.url,
        servers = servers_sentence(t),
        config = block("json", &json_pretty(&config)),
    )
}

fn cursor(t: &Target) -> String {
    let k = &t.key_env;
    let config = json!({"mcpServers": {"gatehouse": {
        "url": t.mcp_url(),
        "headers": mcp_headers(t, format!("Bearer ${{env:{k}}}")),
    }}});
    format!(
        "# Cursor -> Gatehouse at {url}\n\n\
         ## MCP tools\n\n\
         {servers} Cursor reads the key from {k} (${{env:{k}}}).\n\
         Linux/macOS: ~/.cursor/mcp.json    Windows: %USERPROFILE%\\.cursor\\mcp.json\n\
         (or .cursor/mcp.json in a project)\n\n{config}\
         ## Models\n\n\
         Settings -> Models -> API Keys: OpenAI API Key = your Gatehouse key,\n\
         \"Override OpenAI Base URL\" = {url}/v1, then add Gatehouse's model names\n\
         (e.g. {model}). Cursor sends chat requests from its own servers, so this needs a\n\
         URL reachable from the internet; MCP calls come from your machine and work on the LAN.\n\n\
         ## Key\n\n{keys}",
        url = t.url,
        model = t.model,
        servers = servers_sentence(t),
        config = block("json", &json_pretty(&config)),
        keys = key_env_steps(t),
    )
}

fn open_webui(t: &Target) -> String {
    let k = &t.key_env;
    let mcp_urls = match t.servers.as_slice() {
        [] => t.mcp_url(),
        servers => servers
            .iter()
            .map(|s| format!("{}/{s}", t.mcp_url()))
            .collect::<Vec<_>>()
            .join("  and  "),
    };
    let env = format!(
        "export OPENAI_API_BASE_URL={url}/v1\nexport OPENAI_API_KEY=\"${k}\"\nexport ENABLE_OLLAMA_API=false\nopen-webui serve --port 8080",
        url = t.url
    );
    let docker = format!(
        "docker run -d -p 3000:8080 --add-host=host.docker.internal:host-gateway \\\n  -e OPENAI_API_BASE_URL={url}/v1 -e OPENAI_API_KEY=\"${k}\" -e ENABLE_OLLAMA_API=false \\\n  -v open-webui:/app/backend/data ghcr.io/open-webui/open-webui:main",
        url = t.url.replace("127.0.0.1", "host.docker.internal")
    );
    let bat = format!(
        "set OPENAI_API_BASE_URL={url}/v1\nset OPENAI_API_KEY=%{k}%\nset ENABLE_OLLAMA_API=false\nopen-webui serve --port 8080",
        url = t.url
    );
    format!(
        "# Open WebUI -> Gatehouse at {url}\n\n\
         Open WebUI lists GET /v1/models (the models the key may use) and chats through\n\
         /v1/chat/completions.\n\n\
         ## At start (environment)\n\n\
         Linux/macOS:\n\n{env}\
         Docker on the Gatehouse host (the container reaches the host as host.docker.internal):\n\n{docker}\
         Windows (cmd):\n\n{bat}\
         ## Or in its admin page\n\n\
         Admin Settings -> Connections -> OpenAI API -> +: URL {url}/v1, key = your Gatehouse key.\n\n\
         ## MCP tools\n\n\
         Admin Settings -> External Tools -> +: type \"MCP (Streamable HTTP)\", URL {mcp_urls},\n\
         auth Bearer with the key. Or let Gatehouse run the tools itself: give the model\n\
         model_info.mcp_servers in config.yaml and every chat gets the answer with the tools run.\n\n",
        url = t.url,
        env = block("sh", &env),
        docker = block("sh", &docker),
        bat = block("bat", &bat),
    )
}

/// The Python SDKs' `extra_headers` argument narrowing the request's MCP servers.
fn python_extra_headers(t: &Target) -> String {
    t.servers_header()
        .map(|s| {
            format!(
                ",\n    extra_headers={{\"x-mcp-servers\": \"{s}\"}},  # Gatehouse runs these servers' tools"
            )
        })
        .unwrap_or_default()
}

fn openai_sdk(t: &Target) -> String {
    let k = &t.key_env;
    let headers = python_extra_headers(t);
    let python = format!(
        "import os\n\
         from openai import OpenAI\n\n\
         client = OpenAI(base_url=\"{url}/v1\", api_key=os.environ[\"{k}\"])\n\
         reply = client.chat.completions.create(\n    model=\"{m}\",\n    messages=[{{\"role\": \"user\", \"content\": \"hello\"}}]{headers}\n)\n\
         print(reply.choices[0].message.content)",
        url = t.url,
        m = t.model,
    );
    let js = format!(
        "import OpenAI from \"openai\";\n\n\
         const client = new OpenAI({{ baseURL: \"{url}/v1\", apiKey: process.env.{k} }});\n\
         const reply = await client.chat.completions.create({{\n  model: \"{m}\",\n  messages: [{{ role: \"user\", content: \"hello\" }}],\n}});\n\
         console.log(reply.choices[0].message.content);",
        url = t.url,
        m = t.model,
    );
    format!(
        "# openai SDK -> Gatehouse at {url}\n\n\
         Chat completions, Responses and embeddings, for every model of Gatehouse. Instead of\n\
         passing base_url, the SDKs also read OPENAI_BASE_URL={url}/v1 and OPENAI_API_KEY.\n\n\
         Python (pip install openai):\n\n{python}\
         Node (npm install openai):\n\n{js}\
         ## Key\n\n{keys}",
        url = t.url,
        python = block("python", &python),
        js = block("js", &js),
        keys = key_env_steps(t),
    )
}

fn anthropic_sdk(t: &Target) -> String {
    let k = &t.key_env;
    let headers = python_extra_headers(t);
    let python = format!(
        "import os\n\
         from anthropic import Anthropic\n\n\
         client = Anthropic(base_url=\"{url}\", api_key=os.environ[\"{k}\"])\n\
         reply = client.messages.create(\n    model=\"{m}\",\n    max_tokens=512,\n    messages=[{{\"role\": \"user\", \"content\": \"hello\"}}]{headers}\n)\n\
         print(reply.content[0].text)",
        url = t.url,
        m = t.model,
    );
    let js = format!(
        "import Anthropic from \"@anthropic-ai/sdk\";\n\n\
         const client = new Anthropic({{ baseURL: \"{url}\", apiKey: process.env.{k} }});\n\
         const reply = await client.messages.create({{\n  model: \"{m}\",\n  max_tokens: 512,\n  messages: [{{ role: \"user\", content: \"hello\" }}],\n}});\n\
         console.log(reply.content[0].text);",
        url = t.url,
        m = t.model,
    );
    format!(
        "# anthropic SDK -> Gatehouse at {url}\n\n\
         Messages (and count_tokens) for every model of Gatehouse; the base URL has no /v1.\n\
         The SDKs also read ANTHROPIC_BASE_URL={url} and ANTHROPIC_API_KEY.\n\n\
         Python (pip install anthropic):\n\n{python}\
         Node (npm install @anthropic-ai/sdk):\n\n{js}\
         ## Key\n\n{keys}",
        url = t.url,
        python = block("python", &python),
        js = block("js", &js),
        keys = key_env_steps(t),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(servers: &[&str]) -> Target {
        Target {
            url: "http://gw.lan:4000".into(),
            key_env: "GW_KEY".into(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
            model: "qwen3-coder".into(),
        }
    }

    #[test]
    fn every_client_names_the_url_and_never_a_key_value() {
        for client in [
            Client::Codex,
            Client::ClaudeCode,
            Client::Vscode,
            Client::Cursor,
            Client::OpenWebui,
            Client::OpenaiSdk,
            Client::AnthropicSdk,
        ] {
            let out = render(client, &target(&["ev", "fs"]));
            assert!(out.contains("http://gw.lan:4000"), "{client:?}");
            assert!(out.contains("Windows") || out.contains("%"), "{client:?}");
            assert!(out.contains("firewall"), "{client:?}: LAN notes");
        }
    }

    #[test]
    fn servers_become_the_header() {
        let out = render(Client::Codex, &target(&["ev", "fs"]));
        assert!(out.contains(r#"http_headers = { "x-mcp-servers" = "ev,fs" }"#));
        let out = render(Client::Vscode, &target(&[]));
        assert!(!out.contains("x-mcp-servers\":"));
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
