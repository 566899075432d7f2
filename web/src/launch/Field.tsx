// One labelled form field with its hint, its error (red) and its warnings (amber, the form
// still submits). The control inside gets aria-describedby / aria-invalid from `fieldProps`.
import type { ReactNode } from "react";

export interface FieldState {
  error?: string;
  warnings?: string[];
  hint?: ReactNode;
}

/** The aria attributes of a control with this id and state. */
export function fieldProps(id: string, state: FieldState) {
  const ids = [state.hint ? `${id}-hint` : "", state.error ? `${id}-error` : "", state.warnings?.length ? `${id}-warn` : ""]
    .filter(Boolean)
    .join(" ");
  return { id, "aria-describedby": ids || undefined, "aria-invalid": state.error ? true : undefined };
}

export function Field({
  id,
  label,
  state,
  children,
  className,
  required,
}: {
  id: string;
  label: string;
  state: FieldState;
  children: ReactNode;
  className?: string;
  required?: boolean;
}) {
  return (
    <div className={`lf-field${className ? ` ${className}` : ""}${state.error ? " lf-has-error" : ""}`}>
      <div className="lf-label-row">
        <label htmlFor={id}>{label}</label>
        {required ? (
          <span className="lf-required" aria-hidden="true" title="required">
            *
          </span>
        ) : null}
      </div>
      {children}
      {state.hint ? (
        <div className="lf-hint" id={`${id}-hint`}>
          {state.hint}
        </div>
      ) : null}
      {state.error ? (
        <div className="lf-error" id={`${id}-error`} data-testid={`error-${id}`}>
          {state.error}
        </div>
      ) : null}
      {state.warnings?.length ? (
        <div className="lf-warnings" id={`${id}-warn`} data-testid={`warning-${id}`}>
          {state.warnings.map((w) => (
            <p key={w} className="lf-warning">
              <span aria-hidden="true">⚠ </span>
              {w}
            </p>
          ))}
        </div>
      ) : null}
    </div>
  );
}
