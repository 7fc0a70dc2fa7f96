// jsonc-parser's parse errors, said the way a person would fix them. Comments and
// trailing commas are allowed, so those are never reported.
import { ParseErrorCode, type ParseError } from 'jsonc-parser';

export function syntaxMessage(error: ParseError, text: string): string {
  const found = text.slice(error.offset, error.offset + Math.max(error.length, 1));
  switch (error.error) {
    case ParseErrorCode.InvalidSymbol:
      if (found.startsWith("'")) return 'strings and field names use double quotes ("), not single quotes';
      if (/^[A-Za-z_$]/.test(found)) return `unexpected ${JSON.stringify(text.slice(error.offset, error.offset + error.length))}: put field names and text in double quotes`;
      return `unexpected ${JSON.stringify(found)}`;
    case ParseErrorCode.InvalidNumberFormat:
      return 'not a valid number (write sizes and durations as strings, e.g. "10m", "30s")';
    case ParseErrorCode.PropertyNameExpected:
      return 'expected a field name in double quotes';
    case ParseErrorCode.ValueExpected:
      return text.trim() === ''
        ? 'the file is empty; write a JSON object such as { "pools": { … } } (`servestack init` writes a starter)'
        : 'expected a value: a string in double quotes, a number, true, false, an object { } or a list [ ]';
    case ParseErrorCode.ColonExpected:
      return 'expected ":" between the field name and its value';
    case ParseErrorCode.CommaExpected:
      return 'expected a comma between this entry and the one before';
    case ParseErrorCode.CloseBraceExpected:
      return 'expected "}" to close the object (or a comma before the next field)';
    case ParseErrorCode.CloseBracketExpected:
      return 'expected "]" to close the list (or a comma before the next item)';
    case ParseErrorCode.EndOfFileExpected:
      return 'unexpected text after the end of the config: the file holds one object { … }';
    case ParseErrorCode.InvalidCommentToken:
    case ParseErrorCode.UnexpectedEndOfComment:
      return 'a /* comment is not closed with */';
    case ParseErrorCode.UnexpectedEndOfString:
      return 'a string is not closed with a double quote (")';
    case ParseErrorCode.UnexpectedEndOfNumber:
      return 'a number ends too early';
    case ParseErrorCode.InvalidUnicode:
      return 'an invalid \\u escape: write four hex digits, e.g. \\u00e9';
    case ParseErrorCode.InvalidEscapeCharacter:
      return 'an invalid escape in a string: write "\\\\" for a backslash, or use forward slashes in paths';
    case ParseErrorCode.InvalidCharacter:
      return 'a line break or control character inside a string: close the string, or write \\n';
    default:
      return 'the text is not valid JSONC';
  }
}
