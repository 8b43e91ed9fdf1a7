//! No code: the tests in `tests/` use the engine's store as an app does.
