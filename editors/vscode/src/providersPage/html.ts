/**
 * The HTML of the AI Providers page. The page runs under a strict Content-Security-Policy: no
 * inline script or style, scripts only with this render's nonce, styles and images only from the
 * extension's own resources, no network at all (`default-src 'none'`, no `connect-src`). No
 * `vscode` import: the browser test renders the page from this same function.
 */
import { randomBytes } from 'node:crypto';
import type { PageTexts } from './messages';

export interface PageResources {
    /** `webview.cspSource`: the origin the page's own script and style are served from. */
    cspSource: string;
    scriptUri: string;
    styleUri: string;
    texts: PageTexts;
    /** Fresh per render unless a test pins it. */
    nonce?: string;
}

export function newNonce(): string {
    return randomBytes(18).toString('base64url');
}

function escapeAttr(value: string): string {
    return value
        .replace(/&/g, '&amp;')
        .replace(/"/g, '&quot;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;');
}

/** JSON that is safe inside a `<script type="application/json">` element. */
function scriptJson(value: unknown): string {
    return JSON.stringify(value)
        .replace(/</g, '\\u003c')
        .replace(/>/g, '\\u003e')
        .replace(/&/g, '\\u0026')
        .replace(/\u2028/g, '\\u2028')
        .replace(/\u2029/g, '\\u2029');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
    return [
        "default-src 'none'",
        `style-src ${cspSource}`,
        `img-src ${cspSource} data:`,
        `font-src ${cspSource}`,
        `script-src 'nonce-${nonce}'`,
        "form-action 'none'",
        "base-uri 'none'",
    ].join('; ');
}

export function renderProvidersPage(resources: PageResources): string {
    const nonce = resources.nonce ?? newNonce();
    const csp = contentSecurityPolicy(resources.cspSource, nonce);
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(resources.styleUri)}">
<title>AI Providers</title>
</head>
<body>
<main>
  <header class="page-header">
    <h1>AI Providers</h1>
    <button type="button" id="add-provider" class="primary">Add Provider</button>
  </header>

  <p class="intro">The primary provider writes your suggestions; when it fails, the other active providers take over in
  order. API keys are kept in your system keychain (or StoryTeller's encrypted key file), never in settings.</p>

  <div id="notice" class="notice" role="alert" hidden></div>

  <section aria-labelledby="configured-heading">
    <h2 id="configured-heading" class="visually-hidden">Configured providers</h2>
    <p id="empty-state" class="empty-state" hidden></p>
    <table id="provider-table" hidden>
      <thead>
        <tr>
          <th scope="col">Provider</th>
          <th scope="col">Model</th>
          <th scope="col">API key</th>
          <th scope="col">Status</th>
          <th scope="col">Active</th>
          <th scope="col">Primary</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody id="provider-rows"></tbody>
    </table>
  </section>

  <section id="provider-form-section" aria-labelledby="form-heading" hidden>
    <h2 id="form-heading">Add Provider</h2>
    <form id="provider-form" autocomplete="off" novalidate>
      <div class="field">
        <label for="provider-kind">Provider</label>
        <select id="provider-kind" name="provider"></select>
        <a id="key-help" class="help-link" hidden></a>
      </div>
      <div class="field" id="key-field">
        <label for="api-key">API key</label>
        <div class="key-row">
          <input id="api-key" name="apiKey" type="password" spellcheck="false" autocomplete="off">
          <span id="key-hint" class="key-hint" hidden></span>
          <button type="button" id="change-key" class="secondary" hidden>Change API Key</button>
          <button type="button" id="sign-in" class="secondary" hidden>Sign in with OpenRouter</button>
        </div>
      </div>
      <div class="field">
        <label for="model">Model</label>
        <input id="model" name="model" type="text" list="model-options" spellcheck="false">
        <datalist id="model-options"></datalist>
      </div>
      <div class="field" id="endpoint-field" hidden>
        <label for="endpoint">Endpoint</label>
        <input id="endpoint" name="endpoint" type="url" spellcheck="false" placeholder="http://localhost:11434/v1">
      </div>
      <div class="field" id="folder-field" hidden>
        <label for="folder-id">Folder ID</label>
        <input id="folder-id" name="folderId" type="text" spellcheck="false">
      </div>
      <div class="field checkbox" id="primary-field">
        <input id="set-primary" name="primary" type="checkbox">
        <label for="set-primary">Set as Primary</label>
      </div>
      <div id="test-result" class="test-result" role="status" aria-live="polite" hidden></div>
      <div class="form-actions">
        <button type="button" id="test-connection" class="secondary">Test Connection</button>
        <button type="submit" id="save" class="primary" disabled>Save</button>
        <button type="button" id="cancel-form" class="secondary">Cancel</button>
      </div>
    </form>
  </section>

  <div id="confirm" class="dialog-backdrop" hidden>
    <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="confirm-text">
      <p id="confirm-text"></p>
      <div class="form-actions">
        <button type="button" id="confirm-yes" class="danger"></button>
        <button type="button" id="confirm-no" class="secondary"></button>
      </div>
    </div>
  </div>

  <div id="toast" class="toast" role="status" aria-live="polite" hidden></div>
</main>
<script type="application/json" id="storyteller-texts">${scriptJson(resources.texts)}</script>
<script type="module" nonce="${escapeAttr(nonce)}" src="${escapeAttr(resources.scriptUri)}"></script>
</body>
</html>
`;
}
