using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace AgentGateway.Bench;

/// <summary>Requests from this process itself: the probe before each load, and the three-replica
/// check, which counts token requests rather than measuring speed.</summary>
internal static class Load
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    public static HttpRequestMessage Request(string baseUrl, RequestSpec spec, long sequence = 0)
    {
        var request = new HttpRequestMessage(new HttpMethod(spec.Method), baseUrl.TrimEnd('/') + spec.Path);
        if (spec.Body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(spec.Body));
        }

        var headers = spec.Headers.ToList();
        if (spec.Rotate is { } rotate)
        {
            headers.Add(new(rotate.Name, rotate.Values[(int)(sequence % rotate.Values.Count)]));
        }

        foreach (var (name, value) in headers)
        {
            if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                request.Content!.Headers.ContentType = MediaTypeHeaderValue.Parse(value);
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        return request;
    }

    /// <summary>One request of the scenario's shape; anything but a 2xx stops the benchmark with
    /// what the target answered (a problem body names the refusal's reason).</summary>
    public static async Task ProbeAsync(string target, string baseUrl, RequestSpec spec, bool http2 = false)
    {
        using var request = Request(baseUrl, spec);
        if (http2)
        {
            // Cleartext HTTP/2 with prior knowledge, as h2load speaks it.
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{target} answered {spec.Method} {spec.Path} with {(int)response.StatusCode}: {body}");
        }
    }

    /// <summary>A fixed number of connections, each sending its next request when the last is
    /// answered, spread over several base URLs in turn, for a time or until <paramref name="count"/>
    /// requests (with a rotating header: each value once). Returns how many were answered.</summary>
    public static async Task<long> ClosedLoopAsync(IReadOnlyList<string> baseUrls, RequestSpec spec, TimeSpan duration, int connections, long count = long.MaxValue)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseProxy = false });
        var stop = Stopwatch.StartNew();
        long sequence = 0;
        long failures = 0;
        string? firstFailure = null;
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            while (stop.Elapsed < duration)
            {
                var next = Interlocked.Increment(ref sequence) - 1;
                if (next >= count)
                {
                    break;
                }

                using var request = Request(baseUrls[(int)(next % baseUrls.Count)], spec, next);
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref failures);
                    Interlocked.CompareExchange(ref firstFailure, $"{(int)response.StatusCode} {body}", null);
                }
            }
        }));
        return failures == 0 ? Math.Min(sequence, count) : throw new InvalidOperationException($"{failures} requests failed, the first with {firstFailure}");
    }
}
