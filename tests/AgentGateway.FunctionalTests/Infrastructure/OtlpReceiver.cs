using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real OTLP/HTTP receiver (protobuf, as the .NET exporter sends it) on loopback. It keeps every
/// payload as received — so tests can search the exact bytes for secrets — and decodes trace
/// payloads into spans with a small reader of the OTLP protobuf wire format.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<(string Path, byte[] Body)> _payloads = new();

    private OtlpReceiver(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    /// <summary>Every payload received, by path (/v1/traces, /v1/metrics, /v1/logs).</summary>
    public IReadOnlyList<(string Path, byte[] Body)> Payloads => [.. _payloads];

    public IReadOnlyList<Span> Spans => [.. Payloads.Where(p => p.Path == "/v1/traces").SelectMany(p => Decode(p.Body))];

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/{signal}", async (HttpContext context) =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer);
            receiver._payloads.Enqueue((context.Request.Path.Value!, buffer.ToArray()));
            context.Response.ContentType = "application/x-protobuf";
            return Results.Bytes([], "application/x-protobuf");
        });
        await app.StartAsync();
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>ExportTraceServiceRequest → ResourceSpans(2: ScopeSpans(1: scope, 2: Span)).</summary>
    private static IEnumerable<Span> Decode(byte[] payload)
    {
        foreach (var resourceSpans in Fields(payload).Where(f => f.Number == 1).Select(f => f.Bytes!))
        {
            foreach (var scopeSpans in Fields(resourceSpans).Where(f => f.Number == 2).Select(f => f.Bytes!))
            {
                var scope = "";
                var spans = new List<byte[]>();
                foreach (var field in Fields(scopeSpans))
                {
                    if (field.Number == 1)
                    {
                        scope = Fields(field.Bytes!).Where(f => f.Number == 1).Select(f => Encoding.UTF8.GetString(f.Bytes!)).FirstOrDefault() ?? "";
                    }
                    else if (field.Number == 2)
                    {
                        spans.Add(field.Bytes!);
                    }
                }

                foreach (var span in spans)
                {
                    yield return ReadSpan(span, scope);
                }
            }
        }
    }

    private static Span ReadSpan(byte[] bytes, string scope)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        long kind = 0, status = 0;
        var attributes = new Dictionary<string, object?>();
        var repeated = new List<string>();
        var events = new List<SpanEvent>();
        foreach (var field in Fields(bytes))
        {
            switch (field.Number)
            {
                case 1: traceId = Convert.ToHexStringLower(field.Bytes!); break;
                case 2: spanId = Convert.ToHexStringLower(field.Bytes!); break;
                case 4: parent = Convert.ToHexStringLower(field.Bytes!); break;
                case 5: name = Encoding.UTF8.GetString(field.Bytes!); break;
                case 6: kind = (long)field.Varint; break;
                case 9:
                    var (key, value) = ReadKeyValue(field.Bytes!);
                    if (!attributes.TryAdd(key, value))
                    {
                        repeated.Add(key);
                        attributes[key] = value;
                    }

                    break;
                case 11:
                    events.Add(ReadEvent(field.Bytes!));
                    break;
                case 15:
                    status = (long)(Fields(field.Bytes!).FirstOrDefault(f => f.Number == 3).Varint);
                    break;
            }
        }

        return new Span(scope, name, traceId, spanId, parent, kind, status, attributes) { Events = events, Repeated = repeated };
    }

    /// <summary>Span.Event: 2 name, 3 attributes.</summary>
    private static SpanEvent ReadEvent(byte[] bytes)
    {
        var name = "";
        var attributes = new Dictionary<string, object?>();
        foreach (var field in Fields(bytes))
        {
            if (field.Number == 2)
            {
                name = Encoding.UTF8.GetString(field.Bytes!);
            }
            else if (field.Number == 3)
            {
                var (key, value) = ReadKeyValue(field.Bytes!);
                attributes[key] = value;
            }
        }

        return new SpanEvent(name, attributes);
    }

    private static (string Key, object? Value) ReadKeyValue(byte[] bytes)
    {
        string key = "";
        object? value = null;
        foreach (var field in Fields(bytes))
        {
            if (field.Number == 1)
            {
                key = Encoding.UTF8.GetString(field.Bytes!);
            }
            else if (field.Number == 2)
            {
                value = ReadAnyValue(field.Bytes!);
            }
        }

        return (key, value);
    }

    private static object? ReadAnyValue(byte[] bytes)
    {
        foreach (var field in Fields(bytes))
        {
            switch (field.Number)
            {
                case 1: return Encoding.UTF8.GetString(field.Bytes!);
                case 2: return field.Varint != 0;
                case 3: return (long)field.Varint;
                case 4: return BitConverter.Int64BitsToDouble((long)field.Varint);
                case 5: return Fields(field.Bytes!).Where(f => f.Number == 1).Select(f => ReadAnyValue(f.Bytes!)?.ToString()).ToArray();
            }
        }

        return null;
    }

    /// <summary>The protobuf wire format: (field number, varint or fixed value, or length-delimited bytes).</summary>
    private static IEnumerable<Field> Fields(byte[] bytes)
    {
        var position = 0;
        while (position < bytes.Length)
        {
            var tag = ReadVarint(bytes, ref position);
            var number = (int)(tag >> 3);
            switch ((int)(tag & 7))
            {
                case 0:
                    yield return new Field(number, ReadVarint(bytes, ref position), null);
                    break;
                case 1:
                    yield return new Field(number, BitConverter.ToUInt64(bytes, position), null);
                    position += 8;
                    break;
                case 2:
                    var length = (int)ReadVarint(bytes, ref position);
                    yield return new Field(number, 0, bytes[position..(position + length)]);
                    position += length;
                    break;
                case 5:
                    yield return new Field(number, BitConverter.ToUInt32(bytes, position), null);
                    position += 4;
                    break;
                default:
                    throw new InvalidDataException($"unsupported wire type in field {number}");
            }
        }
    }

    private static ulong ReadVarint(byte[] bytes, ref int position)
    {
        ulong value = 0;
        var shift = 0;
        while (true)
        {
            var b = bytes[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }

            shift += 7;
        }
    }

    private readonly record struct Field(int Number, ulong Varint, byte[]? Bytes);

    /// <param name="Kind">OTLP span kind: 1 internal, 2 server, 3 client.</param>
    /// <param name="Status">OTLP status code: 0 unset, 1 ok, 2 error.</param>
    public sealed record Span(string Scope, string Name, string TraceId, string SpanId, string ParentSpanId, long Kind, long Status, IReadOnlyDictionary<string, object?> Attributes)
    {
        public string? Attribute(string name) => Attributes.TryGetValue(name, out var value) ? value switch
        {
            string[] list => string.Join(",", list),
            null => null,
            _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        } : null;

        public IReadOnlyList<SpanEvent> Events { get; init; } = [];

        /// <summary>Attribute keys the span carried more than once (an exporter sends each entry of
        /// the activity's list; a tag appended where one was already set is sent twice).</summary>
        public IReadOnlyList<string> Repeated { get; init; } = [];
    }

    public sealed record SpanEvent(string Name, IReadOnlyDictionary<string, object?> Attributes)
    {
        public string? Attribute(string name) => Attributes.TryGetValue(name, out var value) ? Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }
}
