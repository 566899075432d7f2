// Cancel / requeue the run's Slurm job (each behind an inline confirmation) and relaunch it
// with edits on the launch page. The server's answer (or its error) is shown next to the buttons.
import { useState } from "react";

import { api } from "../api";
import { ErrorMessage } from "../components/common";
import { navigate } from "../router";
import type { Run } from "../types";
import { cancelBlocked, requeueBlocked } from "./runDetails";

type Action = "cancel" | "requeue";

const LABEL: Record<Action, string> = { cancel: "Cancel job", requeue: "Requeue job" };
const QUESTION: Record<Action, string> = {
  cancel: "Cancel this run's Slurm job? It stops now.",
  requeue: "Requeue this run's Slurm job? Slurm stops it and queues it again.",
};

export function Actions({ run, onDone }: { run: Run; onDone: () => void }) {
  const [confirming, setConfirming] = useState<Action | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);

  const blocked: Record<Action, string | null> = { cancel: cancelBlocked(run), requeue: requeueBlocked(run) };

  const act = async (action: Action) => {
    setBusy(true);
    setError(null);
    setMessage(null);
    try {
      const answer = await api.post<{ message: string }>(`/api/v1/runs/${encodeURIComponent(run.id)}/${action}`);
      setMessage(answer.message);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      setConfirming(null);
    }
  };

  return (
    <div className="run-actions" data-testid="run-actions">
      <div className="toolbar">
        {(["cancel", "requeue"] as const).map((action) => (
          <button
            key={action}
            type="button"
            className={action === "cancel" ? "danger" : undefined}
            disabled={busy || blocked[action] !== null || confirming !== null}
            title={blocked[action] ? `Not possible: ${blocked[action]}` : undefined}
            onClick={() => {
              setConfirming(action);
              setError(null);
              setMessage(null);
            }}
          >
            {LABEL[action]}
          </button>
        ))}
        <button type="button" onClick={() => navigate(`/launch?from=${encodeURIComponent(run.id)}`)}>
          Relaunch with edits…
        </button>
      </div>
      {blocked.cancel && blocked.requeue && blocked.cancel === blocked.requeue ? (
        <p className="muted small">Cancel and requeue are not possible: {blocked.cancel}.</p>
      ) : blocked.cancel || blocked.requeue ? (
        <p className="muted small">
          {blocked.cancel ? `Cancel is not possible: ${blocked.cancel}. ` : ""}
          {blocked.requeue ? `Requeue is not possible: ${blocked.requeue}.` : ""}
        </p>
      ) : null}
      {confirming ? (
        <div className="confirm" role="alertdialog" aria-label={`Confirm ${LABEL[confirming].toLowerCase()}`}>
          <span>{QUESTION[confirming]}</span>
          <button
            type="button"
            className={confirming === "cancel" ? "danger" : "primary"}
            disabled={busy}
            onClick={() => void act(confirming)}
            autoFocus
          >
            {busy ? "Working…" : `Yes, ${confirming}`}
          </button>
          <button type="button" disabled={busy} onClick={() => setConfirming(null)}>
            No
          </button>
        </div>
      ) : null}
      {message ? (
        <p className="action-done" role="status">
          {message}
        </p>
      ) : null}
      <ErrorMessage error={error} />
    </div>
  );
}
