// The shell: who is signed in, the header, the theme, and which page the URL names.
import { createContext, useCallback, useContext, useEffect, useState } from "react";

import { api, ApiError, onUnauthorized } from "./api";
import { ErrorBoundary, ErrorMessage, Loading } from "./components/common";
import { live, useLiveState } from "./live";
import { ClusterPage } from "./pages/ClusterPage";
import { ExperimentPage } from "./pages/ExperimentPage";
import { LaunchPage } from "./pages/LaunchPage";
import { PipelinePage } from "./pipelines/PipelinePage";
import { ProjectsPage } from "./pages/ProjectsPage";
import { RunPage } from "./pages/RunPage";
import { SignInPage } from "./pages/SignInPage";
import { SweepPage } from "./sweeps/SweepPage";
import { Link, navigate, RouterProvider, useRoute } from "./router";
import type { User } from "./types";

interface Auth {
  user: User;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth outside a signed-in page");
  return auth;
}

type Theme = "light" | "dark";

function initialTheme(): Theme {
  const saved = localStorage.getItem("runyard-theme");
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(initialTheme);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  const toggle = useCallback(() => {
    setTheme((t) => {
      const next = t === "dark" ? "light" : "dark";
      localStorage.setItem("runyard-theme", next);
      return next;
    });
  }, []);
  return [theme, toggle];
}

function LiveIndicator() {
  const state = useLiveState();
  const label = state === "open" ? "live" : state === "connecting" ? "reconnecting" : "offline";
  return (
    <span className={`live live-${state}`} role="status" title={`live updates: ${label}`}>
      ● {label}
    </span>
  );
}

function Header({ user, onSignOut, theme, toggleTheme }: { user: User; onSignOut: () => void; theme: Theme; toggleTheme: () => void }) {
  const route = useRoute();
  const tab = (name: string, to: string, label: string) => (
    <Link to={to} className={route.name === name ? "nav-active" : undefined} aria-current={route.name === name ? "page" : undefined}>
      {label}
    </Link>
  );
  return (
    <header className="topbar">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Link to="/" className="brand">
        Runyard
      </Link>
      <nav aria-label="Main">
        {tab("projects", "/", "Projects")}
        {tab("cluster", "/cluster", "Cluster")}
        {tab("launch", "/launch", "Start experiment")}
      </nav>
      <span className="spacer" />
      <LiveIndicator />
      <button type="button" className="ghost" onClick={toggleTheme} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
        {theme === "dark" ? "☀ Light" : "☾ Dark"}
      </button>
      <span className="whoami" data-testid="whoami">
        {user.username}
      </span>
      <button type="button" className="ghost" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}

function Pages() {
  const route = useRoute();
  switch (route.name) {
    case "projects":
      return <ProjectsPage />;
    case "experiment":
      return <ExperimentPage experimentId={route.params.id} />;
    case "run":
      return <RunPage runId={route.params.id} />;
    case "sweep":
      return <SweepPage sweepId={route.params.id} />;
    case "pipeline":
      return <PipelinePage pipelineId={route.params.id} />;
    case "launch":
      return <LaunchPage />;
    case "cluster":
      return <ClusterPage />;
    case "signin":
      navigate("/", { replace: true });
      return null;
    default:
      return (
        <div className="page">
          <h1>Not found</h1>
          <p>
            No page at this address. <Link to="/">Go to the projects</Link>.
          </p>
        </div>
      );
  }
}

export function App() {
  const [theme, toggleTheme] = useTheme();
  return (
    <RouterProvider>
      <Authenticated theme={theme} toggleTheme={toggleTheme} />
    </RouterProvider>
  );
}

function Authenticated({ theme, toggleTheme }: { theme: Theme; toggleTheme: () => void }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [problem, setProblem] = useState<unknown>(null);
  const [expired, setExpired] = useState(false);

  useEffect(() => {
    api
      .get<User>("/api/v1/session")
      .then(setUser)
      .catch((err) => {
        if (err instanceof ApiError && err.status === 401) setUser(null);
        else setProblem(err);
      });
  }, []);

  useEffect(
    () =>
      onUnauthorized(() => {
        live.close();
        setUser((u) => {
          if (u) setExpired(true);
          return null;
        });
      }),
    [],
  );

  const signOut = useCallback(async () => {
    try {
      await api.del("/api/v1/session");
    } catch {
      // already gone: signing out still succeeds here
    }
    live.close();
    setExpired(false);
    setUser(null);
  }, []);

  if (problem) {
    return (
      <main className="page narrow">
        <h1>Runyard</h1>
        <ErrorMessage error={problem} onRetry={() => window.location.reload()} />
      </main>
    );
  }
  if (user === undefined) return <Loading what="Connecting to the server" />;
  if (user === null) {
    return (
      <SignInPage
        notice={expired ? "Your session has expired or its key was revoked. Sign in again." : undefined}
        onSignedIn={(u) => {
          setExpired(false);
          setUser(u);
        }}
      />
    );
  }
  return (
    <AuthContext.Provider value={{ user, signOut }}>
      <Header user={user} onSignOut={signOut} theme={theme} toggleTheme={toggleTheme} />
      <main id="main" tabIndex={-1}>
        <ErrorBoundary>
          <Pages />
        </ErrorBoundary>
      </main>
    </AuthContext.Provider>
  );
}
