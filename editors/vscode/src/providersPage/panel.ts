/**
 * The AI Providers webview panel inside VS Code: one panel at a time, its HTML from
 * `renderProvidersPage`, its messages carried by `ProvidersPageHost` to the language server.
 */
import * as vscode from 'vscode';
import { PAGE_TEXTS } from '../texts';
import { ProvidersPageHost, type ExecuteCommand } from './host';
import { renderProvidersPage } from './html';
import type { StatusReport } from './messages';

export class ProvidersPanel {
    private static current: ProvidersPanel | undefined;

    private readonly host: ProvidersPageHost;

    private constructor(
        private readonly panel: vscode.WebviewPanel,
        extensionUri: vscode.Uri,
        execute: ExecuteCommand,
    ) {
        this.host = new ProvidersPageHost(execute, (message) => panel.webview.postMessage(message));
        const webview = panel.webview;
        webview.html = renderProvidersPage({
            cspSource: webview.cspSource,
            scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'out', 'webview', 'main.js')).toString(),
            styleUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'providers.css')).toString(),
            texts: PAGE_TEXTS,
        });
        webview.onDidReceiveMessage((message: unknown) => void this.host.receive(message));
        panel.onDidDispose(() => {
            if (ProvidersPanel.current === this) {
                ProvidersPanel.current = undefined;
            }
        });
    }

    /**
     * Shows the page, creating it on first use; with `providerId`, at that provider's edit form
     * ("Update Key", "Open Settings" of a key problem).
     */
    static show(extensionUri: vscode.Uri, execute: ExecuteCommand, providerId?: number | string): void {
        if (ProvidersPanel.current) {
            ProvidersPanel.current.panel.reveal();
            if (providerId !== undefined) {
                ProvidersPanel.current.host.edit(providerId);
            }
            return;
        }
        const panel = vscode.window.createWebviewPanel('storyteller.providers', 'AI Providers', vscode.ViewColumn.Active, {
            enableScripts: true,
            // Rebuilt from the server when shown again: nothing (least of all a half-typed key)
            // needs to survive in a hidden page.
            retainContextWhenHidden: false,
            localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'out', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
        });
        ProvidersPanel.current = new ProvidersPanel(panel, extensionUri, execute);
        if (providerId !== undefined) {
            ProvidersPanel.current.host.edit(providerId);
        }
    }

    static status(report: StatusReport): void {
        ProvidersPanel.current?.host.status(report);
    }

    static close(): void {
        ProvidersPanel.current?.panel.dispose();
    }
}
