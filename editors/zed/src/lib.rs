//! Starts `dcopilot serve` from PATH (or `lsp.dcopilot.binary` in Zed's settings) and passes
//! `lsp.dcopilot.initialization_options` through; everything else is the standard LSP client in Zed.
use zed_extension_api::{self as zed, settings::LspSettings, LanguageServerId, Result};

struct Dcopilot;

impl zed::Extension for Dcopilot {
    fn new() -> Self {
        Dcopilot
    }

    fn language_server_command(&mut self, _id: &LanguageServerId, worktree: &zed::Worktree) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree("dcopilot", worktree).ok().and_then(|s| s.binary);
        let command = binary
            .as_ref()
            .and_then(|b| b.path.clone())
            .or_else(|| worktree.which("dcopilot"))
            .ok_or("dcopilot is not on PATH: `pip install dcopilot`, or set lsp.dcopilot.binary.path")?;
        let args = binary.and_then(|b| b.arguments).unwrap_or_else(|| vec!["serve".into()]);
        Ok(zed::Command { command, args, env: Default::default() })
    }

    fn language_server_initialization_options(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree("dcopilot", worktree).ok().and_then(|s| s.initialization_options))
    }
}

zed::register_extension!(Dcopilot);
