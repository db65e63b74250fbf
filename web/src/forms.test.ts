import { describe, expect, it } from "vitest";
import { code, email, password } from "./forms";

describe("form rules", () => {
  it("follows the pool's password policy", () => {
    expect(password.safeParse("Correct-Horse-9").success).toBe(true);
    expect(password.safeParse("short-A1").success).toBe(false);
    expect(password.safeParse("alllowercase-99").success).toBe(false);
    expect(password.safeParse("NoSymbolsHere99").success).toBe(false);
  });
  it("checks emails and codes", () => {
    expect(email.safeParse("ada@example.com").success).toBe(true);
    expect(email.safeParse("ada").success).toBe(false);
    expect(code.safeParse("123456").success).toBe(true);
    expect(code.safeParse("12345").success).toBe(false);
  });
});
