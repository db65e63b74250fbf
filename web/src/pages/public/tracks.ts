import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";

export function useTracks() {
  return useQuery({
    queryKey: ["tracks"],
    queryFn: async () => (await unwrap(api.GET("/api/curriculum/tracks/"))).items,
    staleTime: 5 * 60_000,
  });
}

export function usePolicies(enabled = true) {
  const privacy = useQuery({
    queryKey: ["policy", "privacy"],
    queryFn: () => unwrap(api.GET("/api/compliance/privacy-policy/")),
    enabled,
  });
  const terms = useQuery({
    queryKey: ["policy", "terms"],
    queryFn: () => unwrap(api.GET("/api/compliance/terms/")),
    enabled,
  });
  return { privacy, terms };
}
