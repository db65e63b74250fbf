// One map from the API's error.code to plain words (docs/principles.md §12). The server's own message is the
// fallback: it is written for people too.
export const ERROR_WORDS: Record<string, string> = {
  invalid_credentials: "That email and password do not match an account.",
  email_not_verified: "Please verify your email address first: enter the code we emailed you.",
  password_reset_required: "Please set a new password before signing in.",
  account_disabled: "This account is disabled. Contact support if you think this is a mistake.",
  account_suspended: "This account is suspended. Contact support.",
  account_exists: "An account with this email already exists. Sign in to continue.",
  account_unavailable: "This account is not available.",
  invalid_code: "That code is not right or has expired. Check the latest email or ask for a new code.",
  token_not_valid: "Your session has ended. Please sign in again.",
  session_ended: "Your session has ended. Please sign in again.",
  not_authenticated: "Please sign in to continue.",
  permission_denied: "You do not have access to this.",
  payment_required: "This needs an active enrollment. Choose a track to get started.",
  already_paid: "You have already paid for a track.",
  already_enrolled: "You are already enrolled.",
  payment_in_progress: "A payment is already in progress. Finish it or wait a few minutes.",
  enrollment_in_progress: "Your enrollment is being set up. This takes a minute.",
  payment_provider_error: "The payment provider did not answer. Please try again shortly.",
  not_refundable: "This payment cannot be refunded.",
  refund_window_passed: "Refunds are possible within 14 days of payment; that time has passed.",
  refund_progress_exceeded: "Refunds are not possible once you have made substantial progress in the course.",
  refund_work_submitted: "Refunds are not possible once you have submitted work for review.",
  refund_already_requested: "You have already asked for a refund of this payment.",
  consent_required: "Please accept the current privacy policy and terms to continue.",
  consent_outdated: "These are not the current versions of the policy and terms. Reload the page and try again.",
  project_locked: "This project unlocks when the previous one is approved.",
  project_not_started: "Start the project first.",
  project_closed: "This project is closed for changes.",
  project_approved: "This project is already approved.",
  deliverable_approved: "This deliverable is already approved.",
  unchanged_resubmission: "This is the same file that was sent back. Change it before submitting again.",
  file_too_large: "That file is too large.",
  file_type_not_accepted: "That type of file is not accepted here.",
  content_type_not_accepted: "That type of file is not accepted here.",
  no_dataset: "This project has no dataset.",
  not_provisioned: "Your tools are still being set up. Try again in a minute.",
  workspace_error: "The workspace could not be changed just now. Try again in a minute.",
  wrong_track: "That tool belongs to the other track.",
  wrong_password: "That password is not right.",
  export_rate_limited: "You asked for an export recently. You can ask again later.",
  deletion_already_requested: "Your account is already scheduled for deletion.",
  deletion_in_progress: "Your account is being deleted.",
  no_deletion_scheduled: "No deletion is scheduled.",
  validation_error: "Some fields need attention.",
  too_many_requests: "Too many attempts. Wait a moment and try again.",
  service_unavailable: "The service is busy. Please try again in a moment.",
  upstream_error: "A service we depend on did not answer. Please try again shortly.",
  not_found: "We could not find that.",
  not_reviewable: "This attempt was already reviewed, or the student has submitted a newer one. Reload the page to see it.",
  conflict: "That conflicts with the current state. Reload and try again.",
  // The admin console (issue 18).
  last_admin: "This is the last admin: make someone else an admin first.",
  not_a_student: "Only a student can be enrolled or given a trainer.",
  not_enrolled: "This student is not enrolled, so there is nothing to set up again.",
  already_decided: "This refund request was already decided. Reload to see the decision.",
  version_exists: "That version is already published. Choose a higher number.",
  version_not_newer: "The version must be higher than the latest published one.",
  effective_before_latest: "It cannot take effect before the latest published version does.",
  network_error: "We could not reach ApraNova. Check your connection and try again.",
};

export type FieldErrors = Record<string, string>;

export interface ErrorBody {
  error?: { code?: string; message?: string; details?: { field?: string; message?: string }[] };
  detail?: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: FieldErrors;

  constructor(status: number, body: ErrorBody | undefined) {
    const code = body?.error?.code ?? (status === 0 ? "network_error" : "unknown");
    super(ERROR_WORDS[code] ?? body?.error?.message ?? "Something went wrong. Please try again.");
    this.status = status;
    this.code = code;
    this.fields = fieldErrors(body);
  }
}

/** ``body.email`` → ``email``: the message to show beside that field. */
export function fieldErrors(body: ErrorBody | undefined): FieldErrors {
  const fields: FieldErrors = {};
  for (const detail of body?.error?.details ?? []) {
    if (!detail.field || !detail.message) continue;
    const name = detail.field.replace(/^body\./, "").replace(/^query\./, "");
    fields[name] ??= detail.message;
  }
  return fields;
}

export function plainWords(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return ERROR_WORDS.network_error!;
}
