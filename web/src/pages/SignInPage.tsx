import { useState, type FormEvent } from "react";

import { request } from "../api";
import { ErrorMessage } from "../components/common";
import type { User } from "../types";

export function SignInPage({ onSignedIn, notice }: { onSignedIn: (user: User) => void; notice?: string }) {
  const [mode, setMode] = useState<"key" | "password">("key");
  const [apiKey, setApiKey] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = mode === "key" ? { api_key: apiKey.trim() } : { username: username.trim(), password };
      const user = await request<User>("POST", "/api/v1/session", { body, quiet401: true });
      onSignedIn(user);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="page narrow signin" id="main">
      <h1>Sign in to Runyard</h1>
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      <div role="tablist" aria-label="How to sign in" className="tabs">
        <button type="button" role="tab" aria-selected={mode === "key"} onClick={() => setMode("key")}>
          API key
        </button>
        <button type="button" role="tab" aria-selected={mode === "password"} onClick={() => setMode("password")}>
          Username and password
        </button>
      </div>
      <form onSubmit={submit} className="form">
        {mode === "key" ? (
          <label>
            API key
            <input
              type="password"
              name="api_key"
              autoComplete="off"
              value={apiKey}
              onChange={(e) => setApiKey(e.target.value)}
              required
              autoFocus
            />
            <small>`runyard server` prints one; `runyard apikey create` makes more.</small>
          </label>
        ) : (
          <>
            <label>
              Username
              <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
            </label>
            <label>
              Password
              <input
                type="password"
                name="password"
                autoComplete="current-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                required
              />
            </label>
          </>
        )}
        <ErrorMessage error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
