// A small history-API router: the app has a handful of routes, all listed in ROUTES.
import { createContext, useContext, useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from "react";

export interface Route {
  name: string;
  params: Record<string, string>;
  query: URLSearchParams;
}

const ROUTES: [string, RegExp][] = [
  ["signin", /^\/signin\/?$/],
  ["projects", /^\/(?:projects\/?)?$/],
  ["experiment", /^\/experiments\/(?<id>[^/]+)\/?$/],
  ["run", /^\/runs\/(?<id>[^/]+)\/?$/],
  ["sweep", /^\/sweeps\/(?<id>[^/]+)\/?$/],
  ["pipeline", /^\/pipelines\/(?<id>[^/]+)\/?$/],
  ["launch", /^\/launch\/?$/],
  ["cluster", /^\/cluster\/?$/],
];

export function match(pathname: string, search = ""): Route {
  const query = new URLSearchParams(search);
  for (const [name, re] of ROUTES) {
    const m = re.exec(pathname);
    if (m) {
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = decodeURIComponent(v);
      return { name, params, query };
    }
  }
  return { name: "notfound", params: {}, query };
}

const listeners = new Set<() => void>();

export function navigate(to: string, { replace = false } = {}): void {
  if (replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  listeners.forEach((fn) => fn());
}

function current(): Route {
  return match(window.location.pathname, window.location.search);
}

const RouteContext = createContext<Route>(match("/"));

export function RouterProvider({ children }: { children: React.ReactNode }) {
  const [route, setRoute] = useState<Route>(current);
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return <RouteContext.Provider value={route}>{children}</RouteContext.Provider>;
}

export function useRoute(): Route {
  return useContext(RouteContext);
}

/** Replace the query string of the current page (for filters and sorts that survive reloads). */
export function setQuery(query: URLSearchParams): void {
  const qs = query.toString();
  navigate(`${window.location.pathname}${qs ? `?${qs}` : ""}`, { replace: true });
}

export function Link({ to, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={handle} {...rest} />;
}
