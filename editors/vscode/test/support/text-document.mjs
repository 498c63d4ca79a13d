// The editor's copy of one document, in UTF-16 positions (what VS Code negotiates): it applies the
// server's workspace edits the way VS Code does and reports each change back as didChange.

export class EditorDocument {
    constructor(uri, languageId, text) {
        this.uri = uri;
        this.languageId = languageId;
        this.text = text;
        this.version = 1;
    }

    offsetAt({ line, character }) {
        let offset = 0;
        for (let l = 0; l < line; l++) {
            const next = this.text.indexOf('\n', offset);
            if (next < 0) return this.text.length;
            offset = next + 1;
        }
        const end = this.text.indexOf('\n', offset);
        const lineEnd = end < 0 ? this.text.length : end;
        return Math.min(offset + character, lineEnd);
    }

    positionAt(offset) {
        const before = this.text.slice(0, offset);
        const line = before.split('\n').length - 1;
        return { line, character: offset - (before.lastIndexOf('\n') + 1) };
    }

    end() {
        return this.positionAt(this.text.length);
    }

    /** The edits of a WorkspaceEdit that target this document, in either of its two forms. */
    editsIn(workspaceEdit) {
        const edits = [];
        for (const [uri, list] of Object.entries(workspaceEdit.changes ?? {})) {
            if (uri === this.uri) edits.push(...list);
        }
        for (const change of workspaceEdit.documentChanges ?? []) {
            if (change.textDocument?.uri === this.uri) {
                if (typeof change.textDocument.version === 'number' && change.textDocument.version !== this.version) {
                    throw new Error(`edit for version ${change.textDocument.version}, document is at ${this.version}`);
                }
                edits.push(...change.edits);
            }
        }
        return edits;
    }

    /** Applies TextEdits (non-overlapping, any order); returns the didChange content changes. */
    apply(edits) {
        const sorted = edits
            .map((e) => ({ start: this.offsetAt(e.range.start), end: this.offsetAt(e.range.end), newText: e.newText }))
            .sort((a, b) => b.start - a.start);
        const changes = [];
        for (const e of sorted) {
            changes.push({ range: { start: this.positionAt(e.start), end: this.positionAt(e.end) }, text: e.newText });
            this.text = this.text.slice(0, e.start) + e.newText + this.text.slice(e.end);
        }
        this.version += 1;
        return changes;
    }
}
