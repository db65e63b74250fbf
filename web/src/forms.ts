import type { FieldValues, Path, UseFormSetError } from "react-hook-form";
import { z } from "zod";
import { ApiError } from "./api/errors";

/** Puts the API's field errors beside their fields; true when at least one was placed. */
export function placeFieldErrors<T extends FieldValues>(error: unknown, setError: UseFormSetError<T>, names: string[]): boolean {
  if (!(error instanceof ApiError)) return false;
  let placed = false;
  for (const [field, message] of Object.entries(error.fields)) {
    if (names.includes(field)) {
      setError(field as Path<T>, { type: "server", message });
      placed = true;
    }
  }
  return placed;
}

// The user pool's password policy (the API checks it too and names the rule that failed).
export const password = z
  .string()
  .min(12, "At least 12 characters.")
  .max(256, "At most 256 characters.")
  .regex(/[A-Z]/, "Include an uppercase letter.")
  .regex(/[a-z]/, "Include a lowercase letter.")
  .regex(/[0-9]/, "Include a digit.")
  .regex(/[^A-Za-z0-9]/, "Include a symbol.");

export const email = z.string().trim().min(1, "Enter your email address.").email("Enter a valid email address.");
export const code = z.string().trim().regex(/^\d{6}$/, "Enter the 6-digit code from the email.");
