import createClient from "openapi-fetch";
import type { paths, components } from "./schema";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });

export async function runAndRead(token: string, configId: string): Promise<components["schemas"]["AuditStatusView"] | undefined> {
  const headers = { Authorization: `Bearer ${token}` };
  const run = await client.POST("/api/audits/run", {
    headers: { ...headers, "Idempotency-Key": "k-1" },
    body: { fiche_id: "FICHE-1001", audit_config_id: configId },
  });
  if (!run.data) return undefined;
  const audit = await client.GET("/api/audits/{id}", {
    headers,
    params: { path: { id: run.data.audit_id } },
  });
  const niveau: components["schemas"]["NiveauView"] | undefined = audit.data?.niveau;
  void niveau;
  return audit.data?.status;
}
