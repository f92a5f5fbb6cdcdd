using System.Collections;
using System.Reflection;

namespace AgentGateway.Proxy.Sessions;

/// <summary>
/// Whether two compiled configuration objects (a grant and what it holds) say the same thing,
/// so a reload that leaves a grant as it was leaves the sessions it opened alone. Every revision
/// compiles fresh objects, and records compare their collections by reference; this compares by
/// content instead: public properties of objects, elements of sequences (as sets where the
/// sequence is a set), values of everything else. Reading the properties rather than naming them
/// keeps it true when a grant gains a restriction.
/// </summary>
internal static class Structural
{
    private const int MaxDepth = 16;

    public static bool Equal(object? a, object? b) => Equal(a, b, 0);

    private static bool Equal(object? a, object? b, int depth)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }

        if (a is null || b is null || a.GetType() != b.GetType() || depth > MaxDepth)
        {
            return false;
        }

        var type = a.GetType();
        if (a is string || type.IsPrimitive || type.IsEnum || a is decimal or DateTimeOffset or DateTime or TimeSpan or TimeOnly or DateOnly or Guid)
        {
            return a.Equals(b);
        }

        if (a is TimeZoneInfo zone)
        {
            return zone.Id == ((TimeZoneInfo)b).Id;
        }

        if (a is IEnumerable first)
        {
            var left = first.Cast<object?>().ToList();
            var right = ((IEnumerable)b).Cast<object?>().ToList();
            if (left.Count != right.Count)
            {
                return false;
            }

            if (!IsSet(type))
            {
                return left.Zip(right).All(pair => Equal(pair.First, pair.Second, depth + 1));
            }

            // A set's order means nothing: each element must have an equal one on the other side.
            var unmatched = new List<object?>(right);
            foreach (var item in left)
            {
                var index = unmatched.FindIndex(other => Equal(item, other, depth + 1));
                if (index < 0)
                {
                    return false;
                }

                unmatched.RemoveAt(index);
            }

            return true;
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || !property.CanRead)
            {
                continue;
            }

            if (!Equal(property.GetValue(a), property.GetValue(b), depth + 1))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsSet(Type type) =>
        type.GetInterfaces().Any(i => i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(IReadOnlySet<>) || i.GetGenericTypeDefinition() == typeof(ISet<>)));
}
