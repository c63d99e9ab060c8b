//! Faithful mocks of vendor APIs.
