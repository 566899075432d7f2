// The run's tags (chips: add, remove) and notes (a textarea with Save/Cancel), saved with
// PATCH /api/v1/runs/{id}; the server's answer replaces the page's run, its errors show inline.
import { useState, type FormEvent, type KeyboardEvent } from "react";

import { api } from "../api";
import { ErrorMessage } from "../components/common";
import type { Run } from "../types";
import { checkTag } from "./runDetails";

function patchRun(runId: string, body: Record<string, unknown>): Promise<Run> {
  return api.patch<Run>(`/api/v1/runs/${encodeURIComponent(runId)}`, body);
}

export function Tags({ run, onSaved }: { run: Run; onSaved: (run: Run) => void }) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState("");

  const save = async (body: Record<string, unknown>, done: string) => {
    setBusy(true);
    setError(null);
    setStatus("");
    try {
      onSaved(await patchRun(run.id, body));
      setStatus(done);
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const add = async (e: FormEvent) => {
    e.preventDefault();
    const checked = checkTag(text, run.tags);
    if ("error" in checked) {
      setStatus("");
      setError(new Error(checked.error));
      return;
    }
    if (await save({ tags_add: [checked.tag] }, `Added tag “${checked.tag}”.`)) setText("");
  };

  const remove = (tag: string) => void save({ tags: run.tags.filter((t) => t !== tag) }, `Removed tag “${tag}”.`);

  return (
    <div className="tags-editor">
      <ul className="chips" aria-label="Tags" data-testid="run-tags">
        {run.tags.length === 0 ? <li className="muted">No tags.</li> : null}
        {run.tags.map((tag) => (
          <li key={tag} className="chip">
            <span>{tag}</span>
            <button
              type="button"
              className="chip-remove"
              aria-label={`Remove tag ${tag}`}
              title={`Remove tag ${tag}`}
              disabled={busy}
              onClick={() => remove(tag)}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      <form className="toolbar" onSubmit={(e) => void add(e)}>
        <label>
          <span className="visually-hidden">New tag</span>
          <input
            type="text"
            aria-label="New tag"
            placeholder="Add a tag"
            value={text}
            maxLength={200}
            onChange={(e) => setText(e.target.value)}
          />
        </label>
        <button type="submit" disabled={busy || !text.trim()}>
          Add tag
        </button>
        <span role="status" className="muted">
          {status}
        </span>
      </form>
      <ErrorMessage error={error} />
    </div>
  );
}

export function Notes({ run, onSaved }: { run: Run; onSaved: (run: Run) => void }) {
  const [draft, setDraft] = useState<string | null>(null); // null: not editing
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState("");

  const save = async () => {
    if (draft === null) return;
    setBusy(true);
    setError(null);
    setStatus("");
    try {
      onSaved(await patchRun(run.id, { notes: draft }));
      setDraft(null);
      setStatus("Notes saved.");
    } catch (err) {
      setError(err);
      setStatus("Not saved.");
    } finally {
      setBusy(false);
    }
  };

  const cancel = () => {
    setDraft(null);
    setError(null);
    setStatus("");
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void save();
    } else if (e.key === "Escape") {
      e.preventDefault();
      cancel();
    }
  };

  return (
    <div className="notes">
      {draft === null ? (
        <>
          {run.notes ? (
            <div className="notes-text" data-testid="run-notes">
              {run.notes}
            </div>
          ) : (
            <p className="empty" data-testid="run-notes">
              No notes.
            </p>
          )}
          <div className="toolbar">
            <button
              type="button"
              onClick={() => {
                setDraft(run.notes);
                setStatus("");
              }}
            >
              Edit notes
            </button>
            <span role="status" className="muted">
              {status}
            </span>
          </div>
        </>
      ) : (
        <>
          <label className="notes-label">
            <span className="visually-hidden">Notes</span>
            <textarea
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={onKey}
              rows={Math.min(20, Math.max(5, draft.split("\n").length + 1))}
              maxLength={100_000}
              disabled={busy}
              autoFocus
            />
          </label>
          <div className="toolbar">
            <button type="button" className="primary" onClick={() => void save()} disabled={busy}>
              {busy ? "Saving…" : "Save"}
            </button>
            <button type="button" onClick={cancel} disabled={busy}>
              Cancel
            </button>
            <span className="muted small">Ctrl+Enter saves, Esc cancels</span>
            <span role="status" className="muted">
              {status}
            </span>
          </div>
        </>
      )}
      <ErrorMessage error={error} />
    </div>
  );
}
