//! The Gemini Developer API surface: `models/{model}:generateContent`,
//! `:streamGenerateContent` (SSE with `alt=sse`, else a JSON array), `:embedContent` and
//! `:batchEmbedContents`, keyed by `x-goog-api-key` or `?key=`.

pub(crate) mod errors;
pub(crate) mod generate;
pub(crate) mod validate;
