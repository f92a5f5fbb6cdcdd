using System.Runtime.CompilerServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace AgentGateway.Proxy.Telemetry;

/// <summary>
/// Which signals the gateway exports, read as the OpenTelemetry specification defines its
/// environment variables: <c>OTEL_TRACES_EXPORTER</c>, <c>OTEL_METRICS_EXPORTER</c> and
/// <c>OTEL_LOGS_EXPORTER</c> are comma-separated lists where <c>none</c> means no exporter for that
/// signal and <c>otlp</c> is the one this gateway has (to the SDK's default endpoint when none is
/// set). Unset, a signal is exported when an OTLP endpoint is configured
/// (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, or the signal's own), and nothing is otherwise — a gateway
/// configured to export nothing runs no telemetry machinery at all.
/// </summary>
internal static class TelemetryExport
{
    public const string Traces = "TRACES";

    public const string Metrics = "METRICS";

    public const string Logs = "LOGS";

    /// <summary>Whether <paramref name="signal"/> (<see cref="Traces"/>, <see cref="Metrics"/> or
    /// <see cref="Logs"/>) is exported over OTLP.</summary>
    public static bool Exports(IConfiguration configuration, string signal)
    {
        var exporters = configuration[$"OTEL_{signal}_EXPORTER"];
        if (string.IsNullOrWhiteSpace(exporters))
        {
            return !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
                || !string.IsNullOrWhiteSpace(configuration[$"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"]);
        }

        // "none" alone, or any list without "otlp" (exporters this gateway does not carry, such as
        // console or zipkin, which the specification lets an SDK ignore): nothing for this signal.
        foreach (var name in exporters.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (name.Equals("otlp", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The runtime's <see cref="System.Diagnostics.ActivitySource"/> of outgoing HTTP requests.</summary>
    private const string HttpClientSource = "System.Net.Http";

    /// <summary>ASP.NET Core's <see cref="System.Diagnostics.ActivitySource"/> of the request's server span.</summary>
    private const string AspNetCoreSource = "Microsoft.AspNetCore";

    /// <summary>The switch that, set to false, has ASP.NET Core 10 put the semantic-convention
    /// attributes it knows when a request starts on the request's activity (its default from .NET 11).</summary>
    private const string HostingOpenTelemetryData = "Microsoft.AspNetCore.Hosting.SuppressActivityOpenTelemetryData";

    /// <summary>The meters exported: the gateway's own, ASP.NET Core hosting's (request duration)
    /// and Kestrel's (connections). Not the other <c>Microsoft.AspNetCore.*</c> meters, which record
    /// per request what an operator of this gateway does not read (routing's match attempts, the
    /// memory pool's every block rented and returned), nor the HTTP client's (the upstream's answers
    /// are counted by <c>agentgateway.upstream.responses</c>).</summary>
    internal static readonly string[] Meters = [GatewayTelemetry.Name, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"];

    /// <summary>Instruments of the exported meters that are not exported: hosting's count of
    /// requests in flight, recorded twice per request (at its start and its end).</summary>
    internal static readonly string[] Dropped = ["http.server.active_requests"];

    /// <summary>Registers OpenTelemetry for the signals exported.</summary>
    /// <remarks>Its own method, never inlined, and called only when something is exported: the JIT
    /// loads the assemblies a method names when it compiles that method, so a gateway that exports
    /// nothing never maps OpenTelemetry's SDK and exporter assemblies at all (they are resident
    /// memory for nothing, and code its GC and JIT would otherwise carry).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Register(IServiceCollection services, bool traces, bool metrics, bool logs)
    {
        // Nothing here reads the agent's trace headers (see OwnTracePropagator); an instrumentation
        // library added later would use this propagator, which passes no agent baggage on.
        OpenTelemetry.Sdk.SetDefaultTextMapPropagator(new OpenTelemetry.Context.Propagation.TraceContextPropagator());
        var telemetry = services.AddOpenTelemetry();
        if (traces)
        {
            // The request's server span is ASP.NET Core's own activity: with the switch off, hosting
            // sets the attributes known at the start (method, scheme, path, server address and port,
            // user agent) as it creates it, and ServerSpan stamps those known at the end (status,
            // route, protocol version, error type). OpenTelemetry's ASP.NET Core instrumentation
            // did both through a DiagnosticListener subscription, which has hosting write an event
            // at the start and end of every request for it to read by reflection.
            // The HTTP client's spans come from the runtime's own "System.Net.Http" source, which
            // since .NET 9 names them and sets the semantic-convention attributes itself (method,
            // server.address, server.port, url.full with the query redacted, status, error.type).
            AppContext.SetSwitch(HostingOpenTelemetryData, false);
            telemetry.WithTracing(static tracing => tracing
                .AddSource(GatewayTelemetry.Name, AspNetCoreSource, HttpClientSource)
                .AddOtlpExporter());
        }

        if (metrics)
        {
            // A dropped instrument is never enabled, so what records it skips the measurement.
            telemetry.WithMetrics(static metrics => metrics
                .AddMeter(Meters)
                .AddView(static instrument => Array.IndexOf(Dropped, instrument.Name) >= 0 && instrument.Meter.Name == "Microsoft.AspNetCore.Hosting" ? MetricStreamConfiguration.Drop : null)
                .AddOtlpExporter());
        }

        if (logs)
        {
            telemetry.WithLogging(static logging => logging.AddOtlpExporter());
        }
    }
}
