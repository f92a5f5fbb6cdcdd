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

    /// <summary>Registers OpenTelemetry for the signals exported.</summary>
    /// <remarks>Its own method, never inlined, and called only when something is exported: the JIT
    /// loads the assemblies a method names when it compiles that method, so a gateway that exports
    /// nothing never maps OpenTelemetry's SDK, exporter and instrumentation assemblies at all (they
    /// are resident memory for nothing, and code its GC and JIT would otherwise carry).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Register(IServiceCollection services, bool traces, bool metrics, bool logs)
    {
        // OpenTelemetry's instrumentation, left with the plain W3C propagator, neither reads the
        // agent's trace headers again nor passes its baggage on (see OwnTracePropagator).
        OpenTelemetry.Sdk.SetDefaultTextMapPropagator(new OpenTelemetry.Context.Propagation.TraceContextPropagator());
        var telemetry = services.AddOpenTelemetry();
        if (traces)
        {
            // The HTTP client's spans come from the runtime's own "System.Net.Http" source, which
            // since .NET 9 names them and sets the semantic-convention attributes itself (method,
            // server.address, server.port, url.full with the query redacted, status, error.type).
            // OpenTelemetry's HttpClient instrumentation adds nothing to that on .NET 9 and later
            // but a DiagnosticListener subscription, which makes the handler allocate an event
            // payload at the start and end of every upstream call for it to read by reflection.
            telemetry.WithTracing(static tracing => tracing
                .AddSource(GatewayTelemetry.Name, HttpClientSource)
                .AddAspNetCoreInstrumentation()
                .AddOtlpExporter());
        }

        if (metrics)
        {
            telemetry.WithMetrics(static metrics => metrics
                .AddMeter(GatewayTelemetry.Name)
                .AddAspNetCoreInstrumentation()
                .AddOtlpExporter());
        }

        if (logs)
        {
            telemetry.WithLogging(static logging => logging.AddOtlpExporter());
        }
    }
}
