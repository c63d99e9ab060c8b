//! What a run measured, independent of how it is printed or judged.

use std::time::Duration;

use crate::load::Outcome;
use crate::mcp;
use crate::stats::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    NonStream,
    Stream,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::NonStream => "non-stream",
            Mode::Stream => "stream",
        }
    }
}

/// Straight to the upstream, through nginx, or through the gateway to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    Nginx,
    Gateway,
}

impl Route {
    pub fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Nginx => "nginx",
            Route::Gateway => "gateway",
        }
    }
}

/// One scenario's measured phase.
#[derive(Debug, Clone)]
pub struct Row {
    pub mode: Mode,
    pub route: Route,
    pub connections: usize,
    /// Send → last body byte.
    pub full: Option<Summary>,
    /// Send → first body byte (for a stream: the first SSE event).
    pub first_byte: Option<Summary>,
    pub per_second: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Row {
    pub fn new(mode: Mode, route: Route, connections: usize, outcome: Outcome) -> Row {
        let per_second = outcome.per_second();
        let full = Summary::of(outcome.timings.iter().map(|t| t.full).collect());
        let first_byte = Summary::of(outcome.timings.iter().map(|t| t.first_byte).collect());
        Row {
            mode,
            route,
            connections,
            full,
            first_byte,
            per_second,
            errors: outcome.errors,
            first_error: outcome.first_error,
        }
    }
}

/// One MCP method on one route, sequential requests on one connection.
#[derive(Debug, Clone)]
pub struct McpRow {
    pub method: mcp::Method,
    pub route: Route,
    /// Send → last body byte (for an SSE answer: the end of the stream).
    pub full: Option<Summary>,
    pub per_second: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl McpRow {
    pub fn new(method: mcp::Method, route: Route, outcome: Outcome) -> McpRow {
        McpRow {
            method,
            route,
            per_second: outcome.per_second(),
            full: Summary::of(outcome.timings.iter().map(|t| t.full).collect()),
            errors: outcome.errors,
            first_error: outcome.first_error,
        }
    }
}

/// The key-overhead scenario's two gateways (issue #5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysSide {
    /// Local mode, spend logs off.
    Off,
    /// Master key, a limited virtual key, spend logs on.
    On,
}

impl KeysSide {
    pub fn label(self) -> &'static str {
        match self {
            KeysSide::Off => "off",
            KeysSide::On => "on",
        }
    }
}

/// One side of the key-overhead scenario: non-stream, one connection.
#[derive(Debug, Clone)]
pub struct KeysRow {
    pub side: KeysSide,
    /// Send → last body byte.
    pub full: Option<Summary>,
    pub per_second: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl KeysRow {
    pub fn new(side: KeysSide, outcome: Outcome) -> KeysRow {
        KeysRow {
            side,
            per_second: outcome.per_second(),
            full: Summary::of(outcome.timings.iter().map(|t| t.full).collect()),
            errors: outcome.errors,
            first_error: outcome.first_error,
        }
    }
}

/// Spawn → served, per start-up trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Startup {
    pub to_listening: Duration,
    /// First 200 from `GET /health/liveliness`.
    pub to_liveliness: Duration,
    /// First 200 from a chat completion (includes the first upstream connection).
    pub to_first_chat: Duration,
}

/// Gateway resident memory in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Right after start-up and one liveliness probe, before any chat request.
    pub idle_after_start: Option<u64>,
    /// After all scenarios, once the load stopped (connections closed, 1 s idle).
    pub idle_after_load: Option<u64>,
    /// `VmHWM`: the peak while under load.
    pub peak: Option<u64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub rows: Vec<Row>,
    pub startups: Vec<Startup>,
    pub memory: Memory,
    /// The MCP scenarios (empty when they were not run).
    pub mcp: Vec<McpRow>,
    /// The key-overhead scenario (empty when it was not run).
    pub keys: Vec<KeysRow>,
    /// The scale scenarios (`--scale`).
    pub scale: Option<crate::scale::ScaleResults>,
    /// Many MCP sessions over one stdio upstream (`--scale`, `--mcp-sessions-only`).
    pub mcp_sessions: Option<crate::mcp_scale::SessionsResult>,
}

impl Results {
    pub fn row(&self, mode: Mode, route: Route, connections: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.mode == mode && r.route == route && r.connections == connections)
    }

    /// Direct and gateway rows of the same scenario.
    pub fn pair(&self, mode: Mode, connections: usize) -> Option<(&Row, &Row)> {
        Some((
            self.row(mode, Route::Direct, connections)?,
            self.row(mode, Route::Gateway, connections)?,
        ))
    }

    /// Direct and gateway rows of one MCP method.
    pub fn mcp_pair(&self, method: mcp::Method) -> Option<(&McpRow, &McpRow)> {
        let find = |route| {
            self.mcp
                .iter()
                .find(|r| r.method == method && r.route == route)
        };
        Some((find(Route::Direct)?, find(Route::Gateway)?))
    }

    /// The "off" and "on" rows of the key-overhead scenario.
    pub fn keys_pair(&self) -> Option<(&KeysRow, &KeysRow)> {
        let find = |side| self.keys.iter().find(|r| r.side == side);
        Some((find(KeysSide::Off)?, find(KeysSide::On)?))
    }

    /// The slowest start-up trial (the target must hold for every start, not on average).
    pub fn worst_startup(&self) -> Option<Startup> {
        self.startups
            .iter()
            .copied()
            .max_by_key(|s| s.to_liveliness)
    }
}
