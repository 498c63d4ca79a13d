// "StoryTeller: Prompt Versions" (src/promptVersions.ts): what the quick pick shows for the real
// server's `storyteller.prompts.list`, and that each choice sends the `storyteller.prompts.setActive`
// arguments that make the server's state what the author picked. A workspace override adds a
// second version of continue_scene, so the A/B choices have something to choose between.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startServer } from './support/real-server.mjs';
import { VSCODE_CLIENT_INFO, vscodeClientCapabilities } from './support/vscode-client-capabilities.mjs';

const require = createRequire(import.meta.url);
const pv = require('../out/src/promptVersions.js');

describe('Prompt Versions against the real server', () => {
    let server;
    let workspace;

    before(async () => {
        workspace = mkdtempSync(join(tmpdir(), 'storyteller-prompts-'));
        mkdirSync(join(workspace, '.storyteller', 'prompts'), { recursive: true });
        writeFileSync(
            join(workspace, '.storyteller', 'prompts', 'continue_scene.md'),
            '---\nname: continue_scene\nversion: 9\ndescription: terse test version\nvariables: [before]\n---\nGo on: {{before}}\n',
        );
        server = await startServer({
            capabilities: vscodeClientCapabilities(),
            clientInfo: VSCODE_CLIENT_INFO,
            rootUri: pathToFileURL(workspace).href,
        });
    });

    after(() => {
        server?.kill();
        rmSync(workspace, { recursive: true, force: true });
    });

    async function versionsOf(name) {
        const all = pv.promptVersions(await server.execute('storyteller.prompts.list', {}));
        return all.filter((v) => v.name === name).sort((a, b) => a.version - b.version);
    }

    test('every template version is listed with its state, weight, usage and success', async () => {
        const versions = pv.promptVersions(await server.execute('storyteller.prompts.list', {}));
        const items = pv.versionItems(versions);
        assert.equal(items.length, versions.length);
        assert.ok(items.length >= 7, 'the bundled templates and the override');
        const nine = items.find((i) => i.label === 'continue_scene v9');
        assert.ok(nine, items.map((i) => i.label).join(', '));
        assert.match(nine.detail, /^0 uses — terse test version$/);
        const one = items.find((i) => i.label === 'continue_scene v1');
        assert.match(one.description, /active · weight \d|inactive/);
        // Usage and success as the server counts them.
        const used = pv.versionItems([{ ...one.version, active: true, weight: 2, usageCount: 14, successRate: 0.643, meaningful: true }])[0];
        assert.equal(used.description, '$(check) active · weight 2');
        assert.equal(used.detail.split(' — ')[0], '14 uses · 64% kept');
        const early = pv.versionItems([{ ...one.version, usageCount: 1, successRate: 1, meaningful: false }])[0];
        assert.equal(early.detail.split(' — ')[0], '1 use · 100% kept (too few uses to judge yet)');
    });

    test('"Use only this version" makes it the only active one', async () => {
        const [, nine] = await versionsOf('continue_scene');
        const args = pv.setActiveArgs(nine, 'only');
        assert.deepEqual(args, { name: 'continue_scene', version: 9 });
        await server.execute('storyteller.prompts.setActive', args);
        const after = await versionsOf('continue_scene');
        assert.deepEqual(after.map((v) => [v.version, v.active]), [[1, false], [9, true]]);
    });

    test('a weight adds a version to the A/B pool; weight 0 takes it out of the draw', async () => {
        const [one] = await versionsOf('continue_scene');
        assert.equal(pv.setActiveArgs(one, 'weight', undefined), undefined, 'Escape sends nothing');
        assert.equal(pv.setActiveArgs(one, 'weight', '-1'), undefined);
        assert.equal(pv.setActiveArgs(one, undefined), undefined);
        for (const bad of ['', 'abc', '-1', '1e400', 'NaN', '2,5']) {
            assert.equal(pv.checkWeight(bad), pv.PromptVersionTexts.weightInvalid, bad);
        }
        assert.equal(pv.checkWeight(' 0.25 '), undefined);
        const args = pv.setActiveArgs(one, 'weight', ' 0.25 ');
        assert.deepEqual(args, { name: 'continue_scene', version: 1, weight: 0.25 });
        await server.execute('storyteller.prompts.setActive', args);
        let after = await versionsOf('continue_scene');
        assert.deepEqual(after.map((v) => [v.version, v.active, v.weight]), [[1, true, 0.25], [9, true, after[1].weight]]);
        const items = pv.versionItems(after);
        assert.equal(items[0].description, '$(check) active · weight 0.25');

        const off = pv.setActiveArgs(after[0], 'off');
        assert.deepEqual(off, { name: 'continue_scene', version: 1, weight: 0 });
        await server.execute('storyteller.prompts.setActive', off);
        after = await versionsOf('continue_scene');
        assert.equal(after[0].weight, 0);
    });

    test('the command is contributed to the palette', async () => {
        const { readFileSync } = await import('node:fs');
        const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
        const command = pkg.contributes.commands.find((c) => c.command === 'storyteller.promptVersions');
        assert.deepEqual([command?.title, command?.category], ['Prompt Versions', 'StoryTeller']);
    });
});
