using System.Buffers;
using System.Collections.Frozen;
using System.Text;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// The forms in which secrets come back from an upstream that echoes what it was sent, and a
/// search for them in text (a header, a reason phrase, a body read one byte per character as
/// Latin-1, so a position in the text is a position in the bytes).
/// <para>
/// Which forms, and why: an echo repeats the request — a debug endpoint, an error page, a JSON
/// document quoting a header, a redirect carrying it in a URL, a gRPC status message — and each
/// writer applies its own escaping. So each secret is searched for
/// <list type="bullet">
/// <item>as it is, with any of its characters in any spelling a client's decoder turns back into
/// it: JSON (<c>\u002B</c>, <c>\/</c>, <c>\t</c>, <c>\u00E9</c> and surrogate pairs for its UTF-8
/// bytes), URL (<c>%2B</c>, <c>%2b</c>, <c>%41</c>, a space as <c>+</c>; also gRPC's
/// <c>grpc-message</c>), HTML character references (<c>&amp;#43;</c>, <c>&amp;#x2B;</c>,
/// <c>&amp;#233;</c>, named ones: <c>&amp;quot;</c>, <c>&amp;sol;</c>, <c>&amp;eacute;</c>). Encoders
/// leave letters, digits and <c>-_.</c> alone, so a form is searched for by its literal start (its
/// anchor) and, where an escape cut that start, from the escape back over the literal characters
/// before it: the escapes are decoded as a client decodes them, not listed per secret;</item>
/// <item>base64, standard and URL-safe, at each of the three alignments its bytes can have inside
/// a longer encoded text (a whole header block encoded, say), so padding does not matter;</item>
/// <item>hex, lower and upper case (debug dumps);</item>
/// <item>base64 and hex wrapped into lines, as the <c>base64</c> and <c>xxd -p</c> tools, MIME and
/// PEM writers wrap them (LF or CRLF, raw or escaped, at least <see cref="MinimumLine"/>
/// characters apart): each such form is anchored on no more of its first characters than a short
/// form leaves to its tails, and is also matched back from each of its first few blocks on, so a
/// line end anywhere in it leaves an anchor whole (a short tail counts only with its whole form);</item>
/// <item>UTF-16, both byte orders (a page in a charset a client honours).</item>
/// </list>
/// Decoded content codings are searched as text (the response guard decodes them first). What is
/// not searched: a secret encrypted, compressed inside a body, or encoded twice, which no echo does
/// by accident — an upstream that sets out to hand an agent the credential it was sent can always
/// do so, and is outside what a gateway can stop (its credential is scoped to that upstream).
/// </para>
/// </summary>
public sealed class SecretForms
{
    /// <summary>The longest escape of one character (<c>\uD83D\uDE00</c>, <c>&amp;#x0002B;</c>,
    /// <c>&amp;lowbar;</c>) that is matched, and so the most characters one byte of a form can take up.</summary>
    private const int MaxEscapeLength = 12;

    /// <summary>Longer anchors add nothing to the search; the form is compared whole at each hit.</summary>
    private const int MaxAnchorLength = 16;

    /// <summary>Base64 forms shorter than this would match by chance.</summary>
    private const int MinimumBase64Length = 12;

    /// <summary>The fewest characters between two line ends a wrapped form may have; wrapping tools
    /// use 60 to 76, so this bounds how many line ends a match can hold.</summary>
    private const int MinimumLine = 16;

    /// <summary>The longest line end inside a wrapped form: CR and LF, each escaped.</summary>
    private const int MaxLineEndLength = 2 * MaxEscapeLength;

    public static readonly SecretForms None = new([]);

    private readonly Form[] _forms;

    /// <summary>The literal start of every form whose first character is never escaped.</summary>
    private readonly SearchValues<string>? _anchors;

    /// <summary>Where a form whose first character may be escaped can start: that character, or an escape.</summary>
    private readonly SearchValues<char>? _escapedStarts;

    private SecretForms(Form[] forms)
    {
        _forms = forms;
        string[] anchors = [.. forms.Where(f => !f.EscapeLed).Select(f => f.Anchor).Distinct(StringComparer.Ordinal)];
        _anchors = anchors.Length > 0 ? SearchValues.Create(anchors, StringComparison.Ordinal) : null;
        // Every character of an escapable form may be escaped, its first too: an escape starts a
        // search from there (and back over the literal characters before it, see Find).
        var escapeLed = forms.Where(f => f.EscapeLed).Select(f => f.Text[0]).ToList();
        _escapedStarts = forms.Any(f => f.Escapable) ? SearchValues.Create([.. escapeLed, '%', '\\', '&', .. escapeLed.Contains(' ') ? "+" : ""]) : null;
        // An escape or a line end only lengthens a form where it matches.
        Shortest = forms.Any(f => f.Alone) ? forms.Where(f => f.Alone).Min(f => f.Text.Length) : int.MaxValue;
    }

    public bool IsEmpty => _forms.Length == 0;

    /// <summary>The fewest characters (bytes, in a body) any form takes up: text shorter than this
    /// holds none. <see cref="int.MaxValue"/> when there are no forms.</summary>
    public int Shortest { get; }

    /// <summary>The forms of <paramref name="secrets"/>.</summary>
    public static SecretForms Of(IEnumerable<string> secrets)
    {
        var forms = new Dictionary<string, (bool Escapable, bool Wrappable, bool Alone, int Anchor)>(StringComparer.Ordinal);
        var tails = new List<(string Tail, string Whole)>();
        void Add(string text, bool escapable, bool wrappable = false, bool alone = true, int anchor = MaxAnchorLength)
        {
            var known = forms.TryGetValue(text, out var seen) ? seen : (Escapable: false, Wrappable: false, Alone: false, Anchor: MaxAnchorLength);
            forms[text] = (escapable || known.Escapable, wrappable || known.Wrappable, alone || known.Alone, Math.Min(anchor, known.Anchor));
        }

        // A wrapped form, and the same form from each block boundary up to the last tail in: a line
        // end k characters into the whole form cuts its anchor unless the anchor is shorter than k,
        // so the whole form is anchored on its first last+1 characters (a line end after them leaves
        // them whole) and the tail from the first block boundary at or after k (before last) has its
        // anchor whole; the whole form is then matched back from that tail (Find), so the characters
        // before the line end are not left in the clear. A tail is itself the encoding of a later run
        // of the secret's bytes; one too short to be told from chance only counts where the whole
        // form is found back from it.
        void AddWrappable(string text, bool escapable, int block)
        {
            var last = LastTail(text.Length, block);
            Add(text, escapable, wrappable: true, anchor: last + 1);
            for (var skip = block; skip <= last; skip += block)
            {
                // Anchored on no more than a line can hold past the line end that cut the whole form:
                // the next line end is at least MinimumLine characters after that one.
                Add(text[skip..], escapable, wrappable: true, alone: text.Length - skip >= MinimumBase64Length, anchor: MinimumLine - block + 1);
                tails.Add((text[skip..], text));
            }
        }

        foreach (var secret in secrets)
        {
            var bytes = Encoding.UTF8.GetBytes(secret);
            Add(Encoding.Latin1.GetString(bytes), escapable: true);
            for (var skip = 0; skip < 3; skip++)
            {
                var whole = (bytes.Length - skip) / 3 * 3;
                var base64 = whole > 0 ? Convert.ToBase64String(bytes, skip, whole) : "";
                if (base64.Length >= MinimumBase64Length)
                {
                    AddWrappable(base64, escapable: true, block: 4);
                    AddWrappable(base64.Replace('+', '-').Replace('/', '_'), escapable: true, block: 4);
                }
            }

            AddWrappable(Convert.ToHexStringLower(bytes), escapable: true, block: 2);
            AddWrappable(Convert.ToHexString(bytes), escapable: true, block: 2);
            Add(Encoding.Latin1.GetString(Encoding.Unicode.GetBytes(secret)), escapable: false);
            Add(Encoding.Latin1.GetString(Encoding.BigEndianUnicode.GetBytes(secret)), escapable: false);
        }

        if (forms.Count == 0)
        {
            return None;
        }

        var built = forms.ToDictionary(f => f.Key, f => new Form(f.Key, f.Value.Escapable, f.Value.Wrappable, f.Value.Alone, f.Value.Anchor), StringComparer.Ordinal);
        foreach (var group in tails.GroupBy(t => t.Tail, StringComparer.Ordinal))
        {
            built[group.Key].Wholes = [.. group.Select(t => built[t.Whole]).Distinct()];
        }

        return new SecretForms([.. built.Values]);
    }

    /// <summary>How far into a wrapped form of <paramref name="length"/> characters its last tail
    /// starts (0: none), so that the whole form's anchor (that many characters and one) and its
    /// shortest tail are both as long as they can be, up to what tells them from chance: the longer
    /// each, the fewer places in a text where they start by chance to be matched further.</summary>
    private static int LastTail(int length, int block)
    {
        int last = 0, best = 1;
        for (var skip = block; skip <= MaxAnchorLength && skip < length; skip += block)
        {
            if (Math.Min(Math.Min(skip + 1, length - skip), MinimumBase64Length) is var shortest && shortest >= best)
            {
                (last, best) = (skip, shortest);
            }
        }

        return last;
    }

    /// <summary>Whether <paramref name="text"/> holds one of the forms.</summary>
    public bool IsIn(ReadOnlySpan<char> text) => text.Length >= Shortest && Find(text, 0).Start >= 0;

    /// <summary>The first form in <paramref name="text"/> found at or after <paramref name="from"/>:
    /// where it starts (-1 when there is none; before <paramref name="from"/> when a wrapped form's
    /// first line was found from its next line) and how long the longest form found there is.</summary>
    /// <remarks>The longest, not the first that matches: when one secret (or one of its forms) is a
    /// prefix of another, the shorter one would leave the longer one's tail out of the match.</remarks>
    public (int Start, int Length) Find(ReadOnlySpan<char> text, int from)
    {
        var scan = Scan.Start;
        var (at, start, end) = Find(text, from, ref scan);
        return at < 0 ? (-1, 0) : (start, end - start);
    }

    /// <summary>Where the two searches for a form's start are in one text, kept by the caller
    /// across calls on that text, so that no search runs twice over the same text: a caller that
    /// goes on from just after each hit then reads the text once, not once per hit.</summary>
    private struct Scan
    {
        /// <summary>The next hit of the anchor search (-2 before the first, -1 when none is left).</summary>
        public int Anchor;

        /// <summary>The same for the search for an escape or an escape-led form's start.</summary>
        public int Escaped;

        /// <summary>Characters both searches have read: a measure of work, for tests. Counted per
        /// call, not on this shared instance, which every request's search would write.</summary>
        public long Read;

        /// <summary>Places the matchers visited (each reading of a form at each place in the text):
        /// a measure of their work, for tests.</summary>
        public long Work;

        public static Scan Start => new() { Anchor = -2, Escaped = -2 };
    }

    /// <summary>The first position at or after <paramref name="from"/> where a form is found, and
    /// the span of text the forms found there cover.</summary>
    private (int At, int Start, int End) Find(ReadOnlySpan<char> text, int from, ref Scan scan)
    {
        if (_forms.Length == 0)
        {
            return (-1, 0, 0);
        }

        for (var at = from; at < text.Length; at++)
        {
            if (scan.Anchor != -1 && scan.Anchor < at)
            {
                scan.Anchor = _anchors is null ? -1 : Counted(text, at, text[at..].IndexOfAny(_anchors), ref scan.Read);
            }

            if (scan.Escaped != -1 && scan.Escaped < at)
            {
                scan.Escaped = _escapedStarts is null ? -1 : Counted(text, at, text[at..].IndexOfAny(_escapedStarts), ref scan.Read);
            }

            at = scan.Anchor < 0 ? scan.Escaped : scan.Escaped < 0 ? scan.Anchor : Math.Min(scan.Anchor, scan.Escaped);
            if (at < 0)
            {
                break;
            }

            int start = at, end = at;
            var escape = IsEscapeStart(text[at]);
            foreach (var form in _forms)
            {
                if (text[at] == form.Text[0] || form.EscapeLed || (escape && form.Escapable))
                {
                    Consider(text, form, at, ref start, ref end, ref scan.Work);
                }

                if (escape && form.Escapable)
                {
                    // Any character may be escaped, a letter too: the form's literal start, when an
                    // escape inside it cut it, ends here, right before the escape.
                    for (var j = Math.Min(at, form.Anchor.Length - 1); j > 0; j--)
                    {
                        if (text.Slice(at - j, j).SequenceEqual(form.Text.AsSpan(0, j)))
                        {
                            Consider(text, form, at - j, ref start, ref end, ref scan.Work);
                        }
                    }
                }
            }

            if (end > at)
            {
                return (at, start, end);
            }
        }

        return (-1, 0, 0);
    }

    /// <summary>Matches <paramref name="form"/> at <paramref name="at"/> and widens
    /// [<paramref name="start"/>, <paramref name="end"/>) to what it covers (back to its whole form's
    /// start when it is a tail of one).</summary>
    private static void Consider(ReadOnlySpan<char> text, Form form, int at, ref int start, ref int end, ref long work)
    {
        if (form.Match(text[at..], out _, ref work) is > 0 and var length)
        {
            var formStart = at;
            foreach (var whole in form.Wholes)
            {
                formStart = Math.Min(formStart, WholeStart(text, at, whole, whole.Text.Length - form.Text.Length, ref work));
            }

            if (form.Alone || formStart < at)
            {
                start = Math.Min(start, formStart);
                end = Math.Max(end, at + length);
            }
        }
    }

    private static bool IsEscapeStart(char c) => c is '%' or '\\' or '&';

    /// <summary>Where <paramref name="whole"/> starts when the form found at <paramref name="at"/> is
    /// its tail from its <paramref name="skip"/>th character on (<paramref name="at"/> when it does
    /// not): a line end among those first characters cut the whole form's anchor, so it is matched
    /// from each place its first characters can start (they take up at most a line end and an escape
    /// each), as far back as it reaches to the tail.</summary>
    private static int WholeStart(ReadOnlySpan<char> text, int at, Form whole, int skip, ref long work)
    {
        var farthest = at - (skip * (whole.Escapable ? MaxEscapeLength : 1)) - MaxLineEndLength;
        for (var from = Math.Max(0, farthest); from <= at - skip; from++)
        {
            if ((text[from] == whole.Text[0] || whole.EscapeLed || (whole.Escapable && IsEscapeStart(text[from])))
                && whole.Match(text[from..], out _, ref work) is > 0 and var length && from + length >= at)
            {
                return from;
            }
        }

        return at;
    }

    /// <summary>Overwrites with <c>*</c>, in <paramref name="bytes"/>, every position that a form in
    /// <paramref name="text"/> (their Latin-1 reading) covers; true if any was found.</summary>
    /// <remarks>
    /// What is masked is the union of every form found at every position. Two secrets' forms can
    /// overlap (the end of one is the start of another) or nest (one is a prefix of another), so the
    /// search goes on from just after each form's start, not from its end, where a form starting
    /// inside it would be missed and its tail left in the clear. And the text is only read: masking
    /// it too would hide a form that starts inside one masked already, from this search or from the
    /// next set of forms searched in the same text (the configured secrets, then the injected token).
    /// The searches for a form's start go on from where they stopped, so a text holding a form at
    /// every position (overlapping echoes sent by an upstream) is still read once, not once per form.
    /// </remarks>
    public bool Mask(ReadOnlySpan<char> text, Span<byte> bytes) => Mask(text, bytes, out _, out _);

    /// <summary><see cref="Mask(ReadOnlySpan{char}, Span{byte})"/>, also saying how many characters
    /// the searches for a form's start read (for tests: the text once per search, not once per form
    /// found).</summary>
    internal bool Mask(ReadOnlySpan<char> text, Span<byte> bytes, out long scanned) => Mask(text, bytes, out scanned, out _);

    /// <summary>The same, also saying how many places the matchers visited (for tests: bounded work
    /// for a form with many readings).</summary>
    internal bool Mask(ReadOnlySpan<char> text, Span<byte> bytes, out long scanned, out long matched)
    {
        var masked = false;
        var scan = Scan.Start;
        for (var (at, start, end) = Find(text, 0, ref scan); at >= 0; (at, start, end) = Find(text, at + 1, ref scan))
        {
            bytes[start..end].Fill((byte)'*');
            masked = true;
        }

        scanned = scan.Read;
        matched = scan.Work;
        return masked;
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that could be the start of a
    /// form the next piece of text completes (the text as it was sent, not as masked: a form may
    /// start inside one found already).</summary>
    public int PendingAtEnd(ReadOnlySpan<char> text)
    {
        var longest = 0;
        foreach (var form in _forms)
        {
            var start = Math.Max(0, text.Length - (form.MaxLength - 1));
            for (var at = start; text.Length - at > longest;)
            {
                var next = text[at..].IndexOfAny(form.Starts) is >= 0 and var i ? at + i : -1;
                if (next < 0 || text.Length - next <= longest)
                {
                    break;
                }

                long work = 0;
                form.Match(text[next..], out var open, ref work);
                if (open)
                {
                    // The earliest partial start of this form is its longest.
                    longest = text.Length - next;
                    break;
                }

                at = next + 1;
            }
        }

        return longest;
    }

    /// <summary>Where a search from <paramref name="from"/> hit (-1 for none), adding what it read
    /// to <paramref name="read"/>.</summary>
    private static int Counted(ReadOnlySpan<char> text, int from, int found, ref long read)
    {
        read += found >= 0 ? found + 1 : text.Length - from;
        return found >= 0 ? from + found : -1;
    }

    /// <summary>Characters no escaping writer (JSON, URL, HTML) ever escapes.</summary>
    private static bool IsLiteral(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.';

    /// <summary>One form of one secret, matched where its text may start.</summary>
    private sealed class Form
    {
        public Form(string text, bool escapable, bool wrappable, bool alone, int anchorLength)
        {
            Text = text;
            Escapable = escapable;
            Wrappable = wrappable;
            Alone = alone;
            EscapeLed = escapable && !IsLiteral(text[0]);
            Ambiguous = escapable && text.AsSpan().IndexOfAny(EscapeStarts) >= 0;
            var literal = escapable ? text.AsSpan().IndexOfAnyExcept(LiteralChars) : -1;
            Anchor = text[..Math.Min(anchorLength, literal < 0 ? text.Length : literal)];
            Starts = SearchValues.Create(escapable ? $"{text[0]}%\\&{(text[0] == ' ' ? "+" : "")}" : text[..1]);
            MaxLength = (escapable ? text.Length * MaxEscapeLength : text.Length)
                + (wrappable ? ((text.Length / MinimumLine) + 1) * MaxLineEndLength : 0);
        }

        private static readonly SearchValues<char> LiteralChars =
            SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

        /// <summary>The characters every escape starts with.</summary>
        private static readonly SearchValues<char> EscapeStarts = SearchValues.Create("%\\&");

        public string Text { get; }

        /// <summary>Whether its characters may appear escaped: any of them, letters and digits too,
        /// since a client's decoder (JSON, HTML, URL) turns every escape back into the character.</summary>
        public bool Escapable { get; }

        /// <summary>Whether it may be cut into lines (an encoding that wrapping tools wrap).</summary>
        public bool Wrappable { get; }

        /// <summary>Whether it is a secret's form when found alone; otherwise (a short tail) only
        /// where one of its <see cref="Wholes"/> is found back from it.</summary>
        public bool Alone { get; }

        /// <summary>Whether its first character is one encoders escape (then it has no literal anchor).</summary>
        public bool EscapeLed { get; }

        /// <summary>Whether one of its characters starts its own escapes (<c>%</c>, <c>\</c>, <c>&amp;</c>),
        /// so that where the text has that character it may be the character or the start of its
        /// escape, and only reading on tells which.</summary>
        public bool Ambiguous { get; }

        /// <summary>The wrapped forms this one is the tail of (a line end near their start cut their anchor).</summary>
        public Form[] Wholes { get; set; } = [];

        /// <summary>Its start as encoders leave it: up to the first character they escape. A spelling
        /// with an escape inside it is found from that escape (see <see cref="SecretForms"/>.Find).</summary>
        public string Anchor { get; }

        /// <summary>Where the form can start in text: its first character, or an escape of it.</summary>
        public SearchValues<char> Starts { get; }

        /// <summary>The most characters it can take up in text.</summary>
        public int MaxLength { get; }

        /// <summary>How long the longest reading of the form at the start of <paramref name="text"/>
        /// is, 0 when there is none; <paramref name="open"/> tells whether the text ends while a
        /// reading still could go on (a longer one, or the only one). Adds the places visited to
        /// <paramref name="work"/>.</summary>
        public int Match(ReadOnlySpan<char> text, out bool open, ref long work)
        {
            if (Ambiguous)
            {
                return MatchEveryReading(text, out open, ref work);
            }

            var length = MatchOneReading(text, ref work);
            open = length < 0;
            return Math.Max(length, 0);
        }

        /// <summary>The form read one unit of text at a time: for a form with no <see cref="Ambiguous"/>
        /// character each position of the text allows one reading (the character itself, an escape
        /// or a line end, which start differently); 0 when it is not there, -1 when the text ends
        /// while it still could be.</summary>
        private int MatchOneReading(ReadOnlySpan<char> text, ref long work)
        {
            var at = 0;
            var i = 0;
            var sinceLineEnd = MinimumLine;
            while (i < Text.Length)
            {
                work++;
                if (at == text.Length)
                {
                    return -1;
                }

                if (Wrappable && i > 0 && sinceLineEnd >= MinimumLine && LineEndLength(text[at..]) is not 0 and var lineEnd)
                {
                    if (lineEnd < 0)
                    {
                        return -1;
                    }

                    at += lineEnd;
                    sinceLineEnd = 0;
                    if (at == text.Length)
                    {
                        return -1;
                    }
                }

                if (text[at] == Text[i])
                {
                    at++;
                    i++;
                    sinceLineEnd++;
                    continue;
                }

                if (!Escapable)
                {
                    return 0;
                }

                var (length, covered) = EscapeOf(text[at..], i);
                if (length <= 0)
                {
                    return length;
                }

                at += length;
                i += covered;
                sinceLineEnd += covered;
            }

            return at;
        }

        /// <summary>The form read every way the text allows: where a character of the form is
        /// <c>&amp;</c>, <c>%</c> or <c>\</c> and the text has it, it is both that character and
        /// perhaps the start of its escape (<c>&amp;amp;</c>, <c>%25</c>, <c>\\</c>), so every
        /// reading is carried on at once, each as the place in the text it has reached. The places
        /// after each character of the form are a set of bits (one per place the form can reach), so a
        /// place reached by many readings is visited once: the work is bounded by the form's length
        /// times the places, never by the readings, which can be exponentially many. An escape of a
        /// code point covers up to four of the form's bytes, so the sets of the next four characters
        /// are kept. Such forms are the secrets as they are, never wrapped (no encoding that wraps
        /// writes these).</summary>
        private int MatchEveryReading(ReadOnlySpan<char> text, out bool open, ref long work)
        {
            const int Levels = 5;
            open = false;
            var size = Math.Min(MaxLength, text.Length) + 1;
            var words = (size + 63) >> 6;
            ulong[]? rented = null;
            Span<ulong> sets = Levels * words <= 64 ? stackalloc ulong[64] : (rented = ArrayPool<ulong>.Shared.Rent(Levels * words));
            sets = sets[..(Levels * words)];
            sets.Clear();
            sets[0] = 1;
            for (var i = 0; i < Text.Length; i++)
            {
                var current = sets.Slice((i % Levels) * words, words);
                var any = false;
                for (var w = 0; w < words; w++)
                {
                    work++;
                    for (var bits = current[w]; bits != 0; bits &= bits - 1)
                    {
                        any = true;
                        work++;
                        var at = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                        if (at == text.Length)
                        {
                            open = true;
                            continue;
                        }

                        if (text[at] == Text[i])
                        {
                            Set(sets, words, i + 1, at + 1, size);
                        }

                        var (length, covered) = EscapeOf(text[at..], i);
                        if (length < 0)
                        {
                            open = true;
                        }
                        else if (length > 0)
                        {
                            Set(sets, words, i + covered, at + length, size);
                        }
                    }
                }

                current.Clear();
                if (!any && sets.IndexOfAnyExcept(0UL) < 0)
                {
                    break;
                }
            }

            var longest = 0;
            var last = sets.Slice((Text.Length % Levels) * words, words);
            for (var w = words - 1; w >= 0 && longest == 0; w--)
            {
                if (last[w] != 0)
                {
                    longest = (w << 6) + 63 - System.Numerics.BitOperations.LeadingZeroCount(last[w]);
                }
            }

            if (rented is not null)
            {
                ArrayPool<ulong>.Shared.Return(rented);
            }

            return longest;

            static void Set(Span<ulong> sets, int words, int level, int place, int size)
            {
                if (place < size)
                {
                    sets[((level % Levels) * words) + (place >> 6)] |= 1UL << (place & 63);
                }
            }
        }

        /// <summary>An escape at the start of <paramref name="text"/> that stands for the form's
        /// bytes from <paramref name="i"/> on: its length and how many of those bytes it covers (one
        /// for a URL escape, the UTF-8 bytes of its code point for JSON and HTML). Length 0 when none
        /// is there, -1 when the text ends while one still could be.</summary>
        private (int Length, int Covered) EscapeOf(ReadOnlySpan<char> text, int i)
        {
            var (value, isByte, length) = Escape(text, nonAscii: Text[i] >= 0x80);
            if (length <= 0)
            {
                return (length, 0);
            }

            if (isByte)
            {
                return value == Text[i] ? (length, 1) : (0, 0);
            }

            if (!System.Text.Rune.TryCreate(value, out var rune))
            {
                return (0, 0);
            }

            Span<byte> utf8 = stackalloc byte[4];
            var n = rune.EncodeToUtf8(utf8);
            if (i + n > Text.Length)
            {
                return (0, 0);
            }

            for (var k = 0; k < n; k++)
            {
                if (Text[i + k] != utf8[k])
                {
                    return (0, 0);
                }
            }

            return (length, n);
        }

        /// <summary>How long a line end is at the start of <paramref name="text"/> — LF, CR or CRLF,
        /// each as itself or escaped (<c>\n</c> in a JSON string, <c>%0A</c>, <c>&amp;#10;</c>); 0 when
        /// none is, -1 when the text ends while one (or a longer one) still could be.</summary>
        private static int LineEndLength(ReadOnlySpan<char> text)
        {
            var (first, length) = Unit(text);
            if (length < 0)
            {
                return -1;
            }

            if (first == '\n')
            {
                return length;
            }

            if (first != '\r')
            {
                return 0;
            }

            if (length == text.Length)
            {
                return -1;
            }

            var (second, more) = Unit(text[length..]);
            return more < 0 ? -1 : second == '\n' ? length + more : length;
        }

        /// <summary>The character the text starts with, read through an escape if one starts it, and
        /// how many characters that takes (-1 when the text ends inside a possible escape).</summary>
        private static (int Value, int Length) Unit(ReadOnlySpan<char> text)
        {
            if (text[0] is '%' or '\\' or '&')
            {
                var (value, _, length) = Escape(text, nonAscii: false);
                if (length != 0)
                {
                    return (value, length);
                }
            }

            return (text[0], 1);
        }

        /// <summary>The escape at the start of <paramref name="text"/>, as the decoders clients use
        /// read it: URL (<c>%XX</c>, one byte; <c>+</c>, a space), JSON (<c>\"</c>, <c>\\</c>,
        /// <c>\/</c>, <c>\b</c>, <c>\f</c>, <c>\n</c>, <c>\r</c>, <c>\t</c>, <c>\uXXXX</c> and
        /// surrogate pairs: one code point), HTML (<c>&amp;#NNN;</c>, <c>&amp;#xHH;</c> with any case
        /// and leading zeros, named references: one code point). Length 0 when none starts it, -1 when
        /// the text ends while one still could.</summary>
        /// <param name="nonAscii">Whether the character wanted is past ASCII: only then are HTML's
        /// names beyond the ASCII ones looked up (a decoder call per reference otherwise).</param>
        private static (int Value, bool Byte, int Length) Escape(ReadOnlySpan<char> text, bool nonAscii)
        {
            switch (text[0])
            {
                case '%':
                    {
                        var (value, length) = Number(text, 1, 16, 2, 2, end: null);
                        return (value, true, length);
                    }

                case '+':
                    return (' ', true, 1);
                case '\\':
                    return JsonEscape(text);
                case '&':
                    return HtmlReference(text, nonAscii);
                default:
                    return (0, false, 0);
            }
        }

        private static (int Value, bool Byte, int Length) JsonEscape(ReadOnlySpan<char> text)
        {
            if (text.Length == 1)
            {
                return (0, false, -1);
            }

            switch (text[1])
            {
                case '"' or '\\' or '/':
                    return (text[1], false, 2);
                case 'b':
                    return ('\b', false, 2);
                case 'f':
                    return ('\f', false, 2);
                case 'n':
                    return ('\n', false, 2);
                case 'r':
                    return ('\r', false, 2);
                case 't':
                    return ('\t', false, 2);
                case 'u':
                    break;
                default:
                    return (0, false, 0);
            }

            var (high, length) = Number(text, 2, 16, 4, 4, end: null);
            if (length <= 0 || !char.IsSurrogate((char)high))
            {
                return (high, false, length);
            }

            // A code point past U+FFFF is a pair of escapes; a lone half is no character.
            if (!char.IsHighSurrogate((char)high))
            {
                return (0, false, 0);
            }

            var rest = text[6..];
            if (rest.Length < 2)
            {
                return (0, false, rest.Length == 0 || rest[0] == '\\' ? -1 : 0);
            }

            if (rest[0] != '\\' || rest[1] != 'u')
            {
                return (0, false, 0);
            }

            var (low, more) = Number(rest, 2, 16, 4, 4, end: null);
            return more < 0 ? (0, false, -1)
                : more > 0 && char.IsLowSurrogate((char)low) ? (char.ConvertToUtf32((char)high, (char)low), false, 6 + more)
                : (0, false, 0);
        }

        private static (int Value, bool Byte, int Length) HtmlReference(ReadOnlySpan<char> text, bool nonAscii)
        {
            if (text.Length == 1)
            {
                return (0, false, -1);
            }

            if (text[1] == '#')
            {
                if (text.Length == 2)
                {
                    return (0, false, -1);
                }

                var (value, length) = text[2] is 'x' or 'X'
                    ? Number(text, 3, 16, 1, MaxEscapeLength - 4, end: ';')
                    : Number(text, 2, 10, 1, MaxEscapeLength - 3, end: ';');
                // Decoders read 0 and the surrogates' numbers as U+FFFD, not as those.
                return length > 0 && (value == 0 || char.IsSurrogate((char)Math.Min(value, 0xFFFF)) && value <= 0xFFFF) ? (0, false, 0) : (value, false, length);
            }

            // A name: letters and digits, then ';' (or, for the few legacy names, nothing).
            var end = 1;
            while (end < text.Length && end <= MaxEscapeLength && char.IsAsciiLetterOrDigit(text[end]))
            {
                end++;
            }

            if (end == 1)
            {
                return (0, false, 0);
            }

            if (end == text.Length && end <= MaxEscapeLength)
            {
                return (0, false, -1);
            }

            var name = text[1..end];
            if (end < text.Length && text[end] == ';' && Named(name, nonAscii) is { } named)
            {
                return (named, false, end + 1);
            }

            // &amp, &lt, &gt, &quot (any case as HTML allows: AMP, LT, GT, QUOT) decode without ';'.
            foreach (var (legacy, value) in Legacy)
            {
                if (name.StartsWith(legacy, StringComparison.Ordinal))
                {
                    return (value, false, 1 + legacy.Length);
                }
            }

            return (0, false, 0);
        }

        private static readonly (string Name, int Value)[] Legacy = [("amp", '&'), ("AMP", '&'), ("lt", '<'), ("LT", '<'), ("gt", '>'), ("GT", '>'), ("quot", '"'), ("QUOT", '"')];

        /// <summary>HTML's named references for ASCII characters (every one the HTML standard has
        /// that fits <see cref="MaxEscapeLength"/>), which no .NET decoder knows but browsers and
        /// other clients' decoders do.</summary>
        private static readonly FrozenDictionary<string, int> AsciiNames = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["Tab"] = '\t', ["NewLine"] = '\n', ["excl"] = '!', ["quot"] = '"', ["QUOT"] = '"', ["num"] = '#', ["dollar"] = '$',
            ["percnt"] = '%', ["amp"] = '&', ["AMP"] = '&', ["apos"] = '\'', ["lpar"] = '(', ["rpar"] = ')', ["ast"] = '*',
            ["midast"] = '*', ["plus"] = '+', ["comma"] = ',', ["period"] = '.', ["sol"] = '/', ["colon"] = ':', ["semi"] = ';',
            ["lt"] = '<', ["LT"] = '<', ["equals"] = '=', ["gt"] = '>', ["GT"] = '>', ["quest"] = '?', ["commat"] = '@',
            ["lsqb"] = '[', ["lbrack"] = '[', ["bsol"] = '\\', ["rsqb"] = ']', ["rbrack"] = ']', ["Hat"] = '^', ["lowbar"] = '_',
            ["UnderBar"] = '_', ["grave"] = '`', ["lcub"] = '{', ["lbrace"] = '{', ["verbar"] = '|', ["vert"] = '|',
            ["rcub"] = '}', ["rbrace"] = '}',
        }.ToFrozenDictionary(StringComparer.Ordinal);

        /// <summary>The code point a named reference stands for: the ASCII names above, else what
        /// .NET's HTML decoder makes of it (the HTML 4 names: <c>&amp;eacute;</c>, <c>&amp;nbsp;</c>…).</summary>
        private static int? Named(ReadOnlySpan<char> name, bool nonAscii)
        {
            if (AsciiNames.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(name, out var ascii))
            {
                return ascii;
            }

            if (!nonAscii)
            {
                return null;
            }

            var reference = string.Concat("&", name, ";");
            var decoded = System.Net.WebUtility.HtmlDecode(reference);
            return decoded != reference && System.Text.Rune.DecodeFromUtf16(decoded, out var rune, out var used) == OperationStatus.Done && used == decoded.Length
                ? rune.Value : null;
        }

        /// <summary>Digits from <paramref name="start"/> (at least <paramref name="minDigits"/>, at most
        /// <paramref name="maxDigits"/>), then <paramref name="end"/> if given: their value (up to
        /// U+10FFFF) and the escape's length; length 0 when they are not there, -1 if the text ends first.</summary>
        private static (int Value, int Length) Number(ReadOnlySpan<char> text, int start, int radix, int minDigits, int maxDigits, char? end)
        {
            var value = 0;
            var at = start;
            while (at < text.Length && at - start < maxDigits && Digit(text[at], radix) is >= 0 and var digit)
            {
                value = (value * radix) + digit;
                at++;
                if (value > 0x10FFFF)
                {
                    return (0, 0);
                }
            }

            var digits = at - start;
            if (at == text.Length && (digits < maxDigits || end is not null))
            {
                return (0, -1);
            }

            if (digits < minDigits)
            {
                return (0, 0);
            }

            if (end is { } terminator)
            {
                return text[at] == terminator ? (value, at + 1) : (0, 0);
            }

            return (value, at);
        }

        private static int Digit(char c, int radix) => c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' when radix == 16 => c - 'a' + 10,
            >= 'A' and <= 'F' when radix == 16 => c - 'A' + 10,
            _ => -1,
        };
    }
}
