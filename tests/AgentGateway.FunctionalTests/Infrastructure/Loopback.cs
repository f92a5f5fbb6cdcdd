using System.Net;
using System.Net.Sockets;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>Loopback ports for the real servers the tests start.</summary>
public static class Loopback
{
    /// <summary>Where the tests pick ports: below the kernel's ephemeral range, so no outgoing
    /// connection (of this run, or of anything else on the machine) can be given a port a test
    /// chose and has not bound yet. The OS's own choice (port 0) comes from that very range, and a
    /// port picked once and bound later — the MCP server's, fixed for a whole run — was seen taken
    /// by a client socket in between ("address already in use") on a loaded machine.</summary>
    private static readonly (int Low, int High) Range = PickRange();

    /// <summary>A port nothing listens on right now, outside the ephemeral range (released at once).</summary>
    public static int FreePort()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(Range.Low, Range.High);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }

        throw new InvalidOperationException($"no free loopback port in {Range.Low}-{Range.High} after 200 attempts");
    }

    private static (int Low, int High) PickRange()
    {
        // Linux: "32768\t60999". Elsewhere, or unreadable: IANA's dynamic range starts at 49152.
        var ephemeralLow = 49152;
        try
        {
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            ephemeralLow = int.Parse(text[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
        }

        // Above the well-known and most registered service ports the machine may run (5432, 6379, 8080…).
        const int low = 10000;
        return ephemeralLow - low > 1000 ? (low, ephemeralLow) : (low, 30000);
    }

    /// <summary>The first of <paramref name="count"/> consecutive ports nothing listens on right now,
    /// for a program that takes a base port and the ones after it.</summary>
    public static int FreePorts(int count)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var first = FreePort();
            if (first + count > IPEndPoint.MaxPort)
            {
                continue;
            }

            var held = new List<TcpListener>();
            try
            {
                for (var port = first; port < first + count; port++)
                {
                    var listener = new TcpListener(IPAddress.Loopback, port);
                    listener.Start();
                    held.Add(listener);
                }

                return first;
            }
            catch (SocketException)
            {
            }
            finally
            {
                held.ForEach(l => l.Dispose());
            }
        }

        throw new InvalidOperationException($"no {count} consecutive free loopback ports in 50 attempts");
    }
}
