// A button that opens a small non-modal panel: Escape or a click outside closes it, and focus
// goes back to the button on Escape.
import { useEffect, useId, useRef, useState, type ReactNode } from "react";

export function Popover({
  label,
  buttonText,
  children,
  className,
  align = "left",
  testId,
}: {
  label: string; // the panel's accessible name
  buttonText: ReactNode;
  children: ReactNode | ((close: () => void) => ReactNode);
  className?: string;
  align?: "left" | "right";
  testId?: string;
}) {
  const [open, setOpen] = useState(false);
  const id = useId();
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        setOpen(false);
        button.current?.focus();
      }
    };
    document.addEventListener("mousedown", onDown);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onDown);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);

  const close = () => setOpen(false);
  return (
    <div className={`rt-popover ${className ?? ""}`} ref={root}>
      <button
        type="button"
        ref={button}
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        onClick={() => setOpen((o) => !o)}
      >
        {buttonText} <span aria-hidden="true">▾</span>
      </button>
      {open ? (
        <div id={id} role="dialog" aria-label={label} className={`rt-popover-panel rt-align-${align}`} data-testid={testId}>
          {typeof children === "function" ? children(close) : children}
        </div>
      ) : null}
    </div>
  );
}
