// The live log tail of one run: the client-captured console lines (/console, live through the
// `logs` events) or the job's output file (/logs, polled while the run is active). Follow mode,
// stream switch, search with highlighting, a bounded buffer. Lines are React text, never HTML.
import { memo, useCallback, useDeferredValue, useEffect, useLayoutEffect, useMemo, useRef, useState, type UIEvent } from "react";

import { api, ApiError } from "../api";
import { ErrorMessage } from "../components/common";
import { formatTime } from "../format";
import { useLive, useLiveState } from "../live";
import type { LogLine } from "../types";
import {
  countMatches,
  followAfterScroll,
  fromConsole,
  fromFile,
  MAX_LINES,
  mergeLines,
  splitHighlight,
  visibleLines,
  type TailLine,
} from "./logTail";

type Source = "console" | "file";
type Stream = "all" | "stdout" | "stderr";

interface ConsoleAnswer {
  lines: LogLine[];
  next_after_id: number;
  more: boolean;
  final: boolean;
}

interface FileAnswer {
  path: string;
  same_file: boolean;
  next_offset: number;
  eof: boolean;
  reset: boolean;
  final: boolean;
  lines: { offset: number; text: string }[];
}

const POLL_MS = 2000;
const MISSING_POLL_MS = 6000;
const FILE_TAIL = 2000;

export interface LogTailProps {
  runId: string;
  active: boolean;
  /** The run recorded an output file path (run.slurm.stdout / stderr). */
  hasFile: boolean;
}

export function LogTail({ runId, active, hasFile }: LogTailProps) {
  const [source, setSource] = useState<Source>("console");
  const [stream, setStream] = useState<Stream>("all");
  const [lines, setLines] = useState<TailLine[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [fileInfo, setFileInfo] = useState<{ path: string; same: boolean } | null>(null);
  const [query, setQuery] = useState("");
  const [onlyMatching, setOnlyMatching] = useState(true);
  const [wrap, setWrap] = useState(true);
  const [follow, setFollow] = useState(true);
  const [tick, setTick] = useState(0);
  const autoPicked = useRef(false);

  const fileStream: "stdout" | "stderr" = stream === "stderr" ? "stderr" : "stdout";

  // ---------------------------------------------------------------- console source
  const fetchConsoleTail = useCallback(
    async (signal?: AbortSignal) => {
      const answer = await api.get<ConsoleAnswer>(
        `/api/v1/runs/${encodeURIComponent(runId)}/console`,
        { tail: MAX_LINES, stream: stream === "all" ? undefined : stream },
        signal,
      );
      return answer.lines.map(fromConsole);
    },
    [runId, stream],
  );

  useEffect(() => {
    if (source !== "console") return;
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    setNotice(null);
    setLines([]);
    fetchConsoleTail(controller.signal)
      .then((fetched) => {
        if (controller.signal.aborted) return;
        setLines((held) => mergeLines(held, fetched));
        setLoading(false);
        if (!autoPicked.current) {
          autoPicked.current = true;
          if (fetched.length === 0 && hasFile) setSource("file");
        }
      })
      .catch((err) => {
        if (controller.signal.aborted || (err as Error).name === "AbortError") return;
        setError(err);
        setLoading(false);
      });
    return () => controller.abort();
  }, [source, fetchConsoleTail, hasFile, tick]);

  useLive((event) => {
    if (event.type === "reset") {
      setTick((t) => t + 1);
      return;
    }
    if (event.type !== "logs" || source !== "console" || event.data.run_id !== runId) return;
    if (event.data.truncated) {
      fetchConsoleTail()
        .then((fetched) => setLines((held) => mergeLines(held, fetched)))
        .catch(() => undefined); // the next event or a reload tries again
      return;
    }
    const fresh = event.data.lines.filter((l) => stream === "all" || l.stream === stream).map(fromConsole);
    if (fresh.length) setLines((held) => mergeLines(held, fresh));
  });

  // without the live stream (reconnecting, a proxy that buffers it), poll for newer lines
  const liveState = useLiveState();
  const lastId = lines.length ? lines[lines.length - 1].id : 0;
  const lastIdRef = useRef(lastId);
  lastIdRef.current = lastId;
  useEffect(() => {
    if (source !== "console" || !active || liveState === "open" || loading) return;
    const id = setInterval(() => {
      api
        .get<ConsoleAnswer>(`/api/v1/runs/${encodeURIComponent(runId)}/console`, {
          after_id: lastIdRef.current,
          limit: 1000,
          stream: stream === "all" ? undefined : stream,
        })
        .then((answer) => setLines((held) => mergeLines(held, answer.lines.map(fromConsole))))
        .catch(() => undefined); // the next round tries again
    }, 5000);
    return () => clearInterval(id);
  }, [source, active, liveState, loading, runId, stream]);

  // ---------------------------------------------------------------- output file source
  useEffect(() => {
    if (source !== "file") return;
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | null = null;
    let offset: number | null = null; // null: the first read asks for the tail
    setLoading(true);
    setError(null);
    setNotice(null);
    setFileInfo(null);
    setLines([]);

    const read = async (): Promise<FileAnswer> => {
      controller = new AbortController();
      const query = offset === null ? { stream: fileStream, tail: FILE_TAIL } : { stream: fileStream, offset };
      return api.get<FileAnswer>(`/api/v1/runs/${encodeURIComponent(runId)}/logs`, query, controller.signal);
    };

    const step = async () => {
      let delay = POLL_MS;
      try {
        // follow the file: ask again at once while a window did not reach its end (bounded)
        for (let round = 0; round < 8 && !cancelled; round++) {
          const answer = await read();
          if (cancelled) return;
          const fetched = answer.lines.map((l) => fromFile(l, fileStream));
          if (answer.reset || offset === null) setLines(mergeLines([], fetched));
          else setLines((held) => mergeLines(held, fetched));
          offset = answer.next_offset;
          setFileInfo({ path: answer.path, same: answer.same_file });
          setNotice(null);
          setError(null);
          if (answer.eof || answer.final) break;
        }
      } catch (err) {
        if (cancelled || (err as Error).name === "AbortError") return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
          setNotice(err.message); // no file yet, or one this server may not read
          delay = MISSING_POLL_MS;
        } else {
          setError(err);
        }
      } finally {
        if (!cancelled) setLoading(false);
      }
      if (!cancelled && active) timer = setTimeout(step, delay);
    };
    void step();
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
      (controller as AbortController | null)?.abort();
    };
  }, [source, fileStream, runId, active, tick]);

  // ---------------------------------------------------------------- view
  const shownStream = source === "file" ? "all" : stream; // a file holds one stream already
  const search = useDeferredValue(query); // typing stays quick with thousands of lines
  const visible = useMemo(() => visibleLines(lines, shownStream, search, onlyMatching), [lines, shownStream, search, onlyMatching]);
  const matches = useMemo(() => countMatches(visibleLines(lines, shownStream, "", false), search), [lines, shownStream, search]);
  const showOrigin = useMemo(() => {
    const origins = new Set<string>();
    for (const l of lines) {
      origins.add(`${l.host ?? ""}|${l.rank ?? ""}`);
      if (origins.size > 1) return true;
    }
    return false;
  }, [lines]);

  const box = useRef<HTMLDivElement>(null);
  const lastTop = useRef(0);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow) {
      el.scrollTop = el.scrollHeight;
      lastTop.current = el.scrollTop;
    }
  }, [visible, follow, wrap]);

  const onScroll = (e: UIEvent<HTMLDivElement>) => {
    const el = e.currentTarget;
    const next = followAfterScroll(follow, lastTop.current, el);
    lastTop.current = el.scrollTop;
    if (next !== follow) setFollow(next);
  };

  const pickSource = (next: Source) => {
    autoPicked.current = true;
    setSource(next);
    setFollow(true);
  };

  const streamOptions: Stream[] = source === "file" ? ["stdout", "stderr"] : ["all", "stdout", "stderr"];
  const currentStream = source === "file" ? fileStream : stream;

  return (
    <div className="logtail">
      <div className="toolbar logtail-toolbar">
        <div className="segmented" role="group" aria-label="Log source">
          <SegButton checked={source === "console"} onClick={() => pickSource("console")} title="Lines the runyard client captured, with time, host and rank">
            Console
          </SegButton>
          <SegButton checked={source === "file"} onClick={() => pickSource("file")} title="The job's stdout/stderr file on shared storage">
            Output file
          </SegButton>
        </div>
        <div className="segmented" role="group" aria-label="Stream">
          {streamOptions.map((s) => (
            <SegButton
              key={s}
              checked={currentStream === s}
              onClick={() => {
                setStream(s);
                setFollow(true);
              }}
            >
              {s}
            </SegButton>
          ))}
        </div>
        <label className="logtail-search">
          <span className="visually-hidden">Search logs</span>
          <input
            type="search"
            placeholder="Search logs"
            aria-label="Search logs"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
        </label>
        {search ? (
          <span className="muted" aria-live="polite" data-testid="log-match-count">
            {matches} matching line{matches === 1 ? "" : "s"}
          </span>
        ) : null}
        <label className="check">
          <input type="checkbox" checked={onlyMatching} onChange={(e) => setOnlyMatching(e.target.checked)} />
          Only matching
        </label>
        <label className="check">
          <input type="checkbox" checked={wrap} onChange={(e) => setWrap(e.target.checked)} />
          Wrap
        </label>
        <span className="spacer" />
        <button
          type="button"
          aria-pressed={follow}
          className={follow ? "follow-on" : undefined}
          onClick={() => {
            const next = !follow;
            setFollow(next);
            if (next && box.current) box.current.scrollTop = box.current.scrollHeight;
          }}
          title="Keep the newest line in view"
        >
          <span className="follow-dot" aria-hidden="true" />
          Follow
        </button>
      </div>
      {source === "file" && fileInfo ? (
        <p className="logtail-path muted">
          <span className="mono">{fileInfo.path}</span>
          {fileInfo.same ? " (stdout and stderr go to this one file)" : ""}
        </p>
      ) : null}
      <ErrorMessage error={error} onRetry={() => setTick((t) => t + 1)} />
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      <div
        ref={box}
        className={`logtail-box mono${wrap ? " wrap" : ""}${visible.length === 0 ? " is-empty" : ""}`}
        role="log"
        aria-live="off"
        aria-label="Log lines"
        tabIndex={0}
        onScroll={onScroll}
        data-testid="log-lines"
      >
        {visible.map((line) => (
          <LogRow key={line.id} line={line} query={search} showTime={source === "console"} showOrigin={showOrigin} />
        ))}
        {!loading && visible.length === 0 && !notice ? (
          <p className="logtail-empty muted">
            {lines.length === 0
              ? source === "console"
                ? `No console lines captured${active ? " yet" : ""}.${hasFile ? " The job's output file may have more: see Output file." : ""}`
                : `The file is empty${active ? " so far" : ""}.`
              : "No line matches."}
          </p>
        ) : null}
        {loading && lines.length === 0 ? <p className="logtail-empty muted">Loading…</p> : null}
      </div>
      <p className="logtail-foot muted">
        {visible.length.toLocaleString()} line{visible.length === 1 ? "" : "s"} shown
        {lines.length >= MAX_LINES ? ` · only the newest ${MAX_LINES.toLocaleString()} lines are kept` : ""}
        {!follow ? " · paused: scroll to the bottom or press Follow to resume" : ""}
        {active && source === "file" ? " · refreshed every 2 s" : ""}
      </p>
    </div>
  );
}

function SegButton({
  checked,
  onClick,
  title,
  children,
}: {
  checked: boolean;
  onClick: () => void;
  title?: string;
  children: React.ReactNode;
}) {
  return (
    <button type="button" aria-pressed={checked} onClick={onClick} title={title}>
      {children}
    </button>
  );
}

function clock(time: number): string {
  return formatTime(time).slice(11);
}

const LogRow = memo(function LogRow({
  line,
  query,
  showTime,
  showOrigin,
}: {
  line: TailLine;
  query: string;
  showTime: boolean;
  showOrigin: boolean;
}) {
  const segments = query ? splitHighlight(line.text, query) : null;
  return (
    <div className={`logline logline-${line.stream}`} data-stream={line.stream}>
      {showTime && line.time !== null ? (
        <span className="logline-time" title={formatTime(line.time)}>
          {clock(line.time)}
        </span>
      ) : null}
      {showOrigin ? (
        <span className="logline-origin">
          {line.host ?? "–"}
          {line.rank !== null ? `:${line.rank}` : ""}
        </span>
      ) : null}
      <span className="logline-text">
        {segments
          ? segments.map((s, i) => (s.match ? <mark key={i}>{s.text}</mark> : <span key={i}>{s.text}</span>))
          : line.text}
      </span>
    </div>
  );
});
