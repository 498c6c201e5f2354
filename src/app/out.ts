/** Plain text for a person at a terminal; the bytes go through core/log (the only writer). */
import { print } from "../core/mod.ts";

export const out = {
  line(text: string): void {
    print(text, "stdout");
  },
  err(text: string): void {
    print(text, "stderr");
  },
};
