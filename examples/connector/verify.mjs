// Verify an ordermill connector request in Node.js with node:crypto only (Standard Webhooks v1).
// rawBody: the body as a Buffer, before JSON parsing; headers: Node's req.headers (lower-case).
import { createHmac, timingSafeEqual } from "node:crypto";

export function verifyOrdermill(rawBody, headers, secret, toleranceSeconds = 300) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) throw new Error("missing signature headers");
  if (!/^[1-9][0-9]{0,11}$/.test(timestamp)) throw new Error("malformed webhook-timestamp");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) {
    throw new Error("webhook-timestamp out of tolerance (a replay?)");
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(rawBody).digest();
  const matches = signatures.split(" ").some((entry) => {
    const [version, value = ""] = entry.split(",");
    const given = Buffer.from(value, "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new Error("no signature matches the secret");
  return JSON.parse(rawBody.toString("utf8"));
}
