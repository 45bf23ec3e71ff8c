// Reported in GetGuestDetails and grpc.Health/Version.
export const AGENT_VERSION = '0.1.0-kataref'
