using System.Diagnostics.Metrics;

namespace AgentGateway.Credentials;

/// <summary>The broker's metrics, on the gateway's one meter (<c>AgentGateway</c>, as the README's outside contract names it).</summary>
public static class CredentialTelemetry
{
    public const string MeterName = "AgentGateway";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>How long token endpoints and identity endpoints take, by credential and outcome.</summary>
    public static readonly Histogram<double> TokenRequestDuration = Meter.CreateHistogram<double>(
        "agentgateway.token.request.duration",
        unit: "s",
        description: "Token requests to issuers, by credential and outcome");

    public static void RecordTokenRequest(string credentialName, TimeSpan elapsed, bool succeeded) =>
        TokenRequestDuration.Record(
            elapsed.TotalSeconds,
            new KeyValuePair<string, object?>("agentgateway.credential.name", credentialName),
            new KeyValuePair<string, object?>("agentgateway.outcome", succeeded ? "success" : "failure"));
}
