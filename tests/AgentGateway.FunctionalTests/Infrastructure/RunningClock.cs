using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// Moves a <see cref="FakeTimeProvider"/> along with the system's clock while it is held, so that
/// what the gateway waits for on its clock (a lease poll, a retry delay) still comes, while the
/// test keeps the jumps that matter — an expiry reached at once on every replica — to itself.
/// </summary>
public sealed class RunningClock : IAsyncDisposable
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);

    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    public RunningClock(FakeTimeProvider time)
    {
        _running = Task.Run(async () =>
        {
            var stopwatch = System.Diagnostics.Stopwatch.StartNew();
            var moved = TimeSpan.Zero;
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(Step, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                // As far as the system's clock went: a late wake-up catches up in one step.
                var elapsed = stopwatch.Elapsed;
                time.Advance(elapsed - moved);
                moved = elapsed;
            }
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _stop.Dispose();
    }
}
