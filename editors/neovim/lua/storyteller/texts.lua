-- The user-facing texts this plugin shows itself, verbatim from DESIGN.md §7 / src/messages.rs
-- (editors/vscode/test/settings-contract.test.mjs checks them). Everything else comes from the server.
return {
  empty_list = "No AI providers configured. Add one to enable AI features.",
  testing_connection = "Testing connection...",
  test_ok = "Connection successful! Model: {model}",
  provider_added = "Provider added successfully",
  confirm_remove = "Remove {provider}? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again.",
  not_configured = "AI providers not configured. Would you like to set one up now?",
  offline = "AI features require an internet connection. You can continue writing and use AI features when you're back online.",
}
