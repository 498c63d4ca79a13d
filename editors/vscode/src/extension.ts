/**
 * The StoryTeller extension: starts `storyteller-lsp`, hands it the `storyteller` settings, and
 * adds what the language client does not: the status bar item fed by `storyteller/status` and the
 * AI Providers page opened by `storyteller/openSettings` or the command palette, and the input
 * boxes of "Continue scene with…" and "Rewrite selection in my style…" (src/steering.ts). Inline
 * completions (several when asked for: Alt+] / Alt+[ cycle them), code actions and their commands
 * come from the language client's built-in features.
 *
 * The extension keeps no provider logic and no keys: both live in the server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
    DidChangeConfigurationNotification,
    ExecuteCommandRequest,
    LanguageClient,
    type LanguageClientOptions,
    type ServerOptions,
    type StaticFeature,
} from 'vscode-languageclient/node';
import { CLIENT_EXPERIMENTAL, Commands, Notifications, SETTINGS_SECTION, settingsProvider } from './contract';
import type { StatusReport } from './providersPage/messages';
import { ProvidersPanel } from './providersPage/panel';
import { PromptVersionTexts, checkWeight, choiceItems, promptVersions, setActiveArgs, versionItems } from './promptVersions';
import { pipeServerLog } from './serverLog';
import { servedLanguages, serverSettings } from './settings';
import { describeStatus } from './status';
import {
    ContinueWithTexts,
    StyleBriefTexts,
    checkInstruction,
    checkStyleBrief,
    rewriteInStyle,
    withInstruction,
} from './steering';

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem | undefined;
let lastStatus: StatusReport | undefined;

function section(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SETTINGS_SECTION);
}

/** `storyteller.serverPath`, else the binary shipped in the extension, else `PATH`. */
export function resolveServerCommand(extensionPath: string, configured: string | undefined): string {
    if (configured && configured.trim() !== '') {
        return configured.trim();
    }
    const bundled = path.join(extensionPath, 'server', process.platform === 'win32' ? 'storyteller-lsp.exe' : 'storyteller-lsp');
    return fs.existsSync(bundled) ? bundled : 'storyteller-lsp';
}

async function execute(command: string, args: Record<string, unknown>): Promise<unknown> {
    if (!client || !client.isRunning()) {
        throw new Error('The StoryTeller language server is not running.');
    }
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] });
}

function showStatus(report: StatusReport | undefined): void {
    lastStatus = report;
    if (!statusItem) {
        return;
    }
    const view = describeStatus(report);
    statusItem.text = view.text;
    statusItem.tooltip = view.tooltip;
    statusItem.command = view.opensSettings ? 'storyteller.openProviders' : 'storyteller.showStatus';
    statusItem.backgroundColor =
        view.severity === 'normal' ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
    statusItem.show();
    if (report) {
        ProvidersPanel.status(report);
    }
}

/** Announces `experimental.storyteller` (see CLIENT_EXPERIMENTAL) in the client capabilities. */
const storytellerCapabilities: StaticFeature = {
    fillClientCapabilities(capabilities) {
        capabilities.experimental = { ...((capabilities.experimental as object | undefined) ?? {}), ...CLIENT_EXPERIMENTAL };
    },
    initialize() {},
    getState: () => ({ kind: 'static' }),
    clear() {},
};

function createClient(context: vscode.ExtensionContext): LanguageClient {
    const config = section();
    const command = resolveServerCommand(context.extensionPath, config.get<string>('serverPath'));
    const serverOptions: ServerOptions = { command, args: ['serve'] };
    const documentSelector = servedLanguages(config).flatMap((language) => [
        { scheme: 'file', language },
        { scheme: 'untitled', language },
    ]);
    const clientOptions: LanguageClientOptions = {
        documentSelector,
        initializationOptions: { [SETTINGS_SECTION]: serverSettings(config) },
        // The server's log lines at their own levels (the client's default shows every stderr
        // line as [error]). stdout carries the protocol; other transports' stdout is info.
        stdioOptions: {
            stdout: (input, channel) => pipeServerLog(input, channel),
            stderr: (input, channel) => pipeServerLog(input, channel),
        },
        middleware: {
            workspace: {
                // The server's pull (`workspace/configuration`) gets the section without the
                // extension-only keys, like the push below.
                configuration: async (params, token, next) => {
                    const result = await next(params, token);
                    if (!Array.isArray(result)) {
                        return result;
                    }
                    return result.map((value, i) =>
                        params.items[i]?.section === SETTINGS_SECTION ? serverSettings(value) : value,
                    );
                },
            },
        },
    };
    const created = new LanguageClient('storyteller', 'StoryTeller', serverOptions, clientOptions);
    created.registerFeature(storytellerCapabilities);
    created.onNotification(Notifications.status, (report: StatusReport) => showStatus(report));
    created.onNotification(Notifications.openSettings, (params: unknown) =>
        ProvidersPanel.show(context.extensionUri, execute, settingsProvider(params)),
    );
    return created;
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
    client = createClient(context);
    try {
        await client.start();
    } catch (error) {
        void vscode.window.showErrorMessage(`StoryTeller: the language server could not start (${String(error)}).`);
        return;
    }
    try {
        showStatus((await execute(Commands.status, {})) as StatusReport);
    } catch {
        // An older server without `storyteller.status`: the notification fills the item later.
    }
}

/** Runs `storyteller.generate`; the server reports progress, applies the edit and tells failures. */
async function generate(args: Record<string, unknown> | undefined): Promise<void> {
    if (!args) {
        return; // Escape or an empty answer: nothing to do.
    }
    try {
        await execute(Commands.generate, args);
    } catch (error) {
        void vscode.window.showErrorMessage(`StoryTeller: ${error instanceof Error ? error.message : String(error)}`);
    }
}

/** "Continue scene with…": the code action's arguments, plus what the author wants to happen. */
async function continueSceneWith(actionArguments: unknown): Promise<void> {
    const answer = await vscode.window.showInputBox({
        title: 'Continue scene with…',
        prompt: ContinueWithTexts.prompt,
        placeHolder: ContinueWithTexts.placeholder,
        ignoreFocusOut: true,
        validateInput: checkInstruction,
    });
    await generate(withInstruction(actionArguments, answer));
}

/** Rewrites the active editor's selection in a style brief the author types. */
async function rewriteSelectionInStyle(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.selection.isEmpty) {
        void vscode.window.showInformationMessage('StoryTeller: select the passage to rewrite first.');
        return;
    }
    const { document, selection } = editor;
    const version = document.version;
    const answer = await vscode.window.showInputBox({
        title: 'Rewrite selection in my style…',
        prompt: StyleBriefTexts.prompt,
        placeHolder: StyleBriefTexts.placeholder,
        ignoreFocusOut: true,
        validateInput: checkStyleBrief,
    });
    const range = client
        ? client.code2ProtocolConverter.asRange(selection)
        : { start: selection.start, end: selection.end };
    await generate(rewriteInStyle(document.uri.toString(), range, version, answer));
}

/** "StoryTeller: Prompt Versions": pick a template version, then how to use it (src/promptVersions.ts). */
async function promptVersionsCommand(): Promise<void> {
    try {
        const versions = promptVersions(await execute(Commands.promptsList, {}));
        if (versions.length === 0) {
            void vscode.window.showInformationMessage(PromptVersionTexts.empty);
            return;
        }
        const picked = await vscode.window.showQuickPick(versionItems(versions), {
            title: PromptVersionTexts.title,
            placeHolder: PromptVersionTexts.placeholder,
            matchOnDescription: true,
            matchOnDetail: true,
        });
        if (!picked) {
            return;
        }
        const how = await vscode.window.showQuickPick(choiceItems(), { title: picked.label });
        const weight =
            how?.choice === 'weight'
                ? await vscode.window.showInputBox({
                      title: picked.label,
                      prompt: PromptVersionTexts.weightPrompt,
                      value: String(picked.version.active ? picked.version.weight : 1),
                      validateInput: checkWeight,
                  })
                : undefined;
        const args = setActiveArgs(picked.version, how?.choice, weight);
        if (!args) {
            return;
        }
        await execute(Commands.promptsSetActive, args);
        // Show the new state of every version.
        await promptVersionsCommand();
    } catch (error) {
        void vscode.window.showErrorMessage(`StoryTeller: ${error instanceof Error ? error.message : String(error)}`);
    }
}

async function restartClient(context: vscode.ExtensionContext): Promise<void> {
    const old = client;
    client = undefined;
    if (old) {
        await old.stop().catch(() => undefined);
    }
    await startClient(context);
}

async function statusSummary(): Promise<void> {
    const view = describeStatus(lastStatus);
    const manage = 'Manage AI Providers';
    const choice = await vscode.window.showInformationMessage(view.tooltip, manage);
    if (choice === manage) {
        await vscode.commands.executeCommand('storyteller.openProviders');
    }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    statusItem = vscode.window.createStatusBarItem('storyteller.status', vscode.StatusBarAlignment.Right, 100);
    statusItem.name = 'StoryTeller';
    context.subscriptions.push(statusItem);
    showStatus(undefined);

    context.subscriptions.push(
        vscode.commands.registerCommand('storyteller.openProviders', () => ProvidersPanel.show(context.extensionUri, execute)),
        vscode.commands.registerCommand('storyteller.showStatus', statusSummary),
        vscode.commands.registerCommand('storyteller.restartServer', () => restartClient(context)),
        vscode.commands.registerCommand('storyteller.promptVersions', promptVersionsCommand),
        vscode.commands.registerCommand(Commands.continueSceneWith, continueSceneWith),
        vscode.commands.registerCommand(Commands.rewriteInStyle, rewriteSelectionInStyle),
        vscode.workspace.onDidChangeConfiguration(async (event) => {
            if (!event.affectsConfiguration(SETTINGS_SECTION)) {
                return;
            }
            if (
                event.affectsConfiguration(`${SETTINGS_SECTION}.serverPath`) ||
                event.affectsConfiguration(`${SETTINGS_SECTION}.languages`)
            ) {
                await restartClient(context);
                return;
            }
            if (client?.isRunning()) {
                await client.sendNotification(DidChangeConfigurationNotification.type, {
                    settings: { [SETTINGS_SECTION]: serverSettings(section()) },
                });
            }
        }),
        { dispose: () => void client?.stop() },
    );

    await startClient(context);
}

export async function deactivate(): Promise<void> {
    ProvidersPanel.close();
    if (client) {
        await client.stop();
        client = undefined;
    }
}
